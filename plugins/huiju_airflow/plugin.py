"""The Airflow plugin entry point (registered through the ``airflow.plugins`` entry point).

Two static sites are mounted on the API server as FastAPI apps:

* the dbt docs (``var/dbt/docs``, written by ``huiju.transform.generate_docs``), linked from
  the UI's Browse menu;
* Great Expectations' Data Docs (``var/gx/uncommitted/data_docs/local_site``, rebuilt after
  every batch's validation) at ``/huiju-data-docs/``. They hold per-expectation counts and
  the rules' SQL, never row values (see ``huiju.quality.expectations``).

Like every plugin FastAPI app they are not behind Airflow's login: keep the API server on a
trusted network.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

DBT_DOCS_PREFIX = "/huiju-dbt-docs"
DATA_DOCS_PREFIX = "/huiju-data-docs"


def _static_app(title: str, site: Any) -> Any:
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles

    app = FastAPI(title=title)
    # check_dir=False: a site appears with the first build, after the server started.
    app.mount("/", StaticFiles(directory=site, html=True, check_dir=False), name="site")
    return app


def dbt_docs_app() -> Any:
    """The dbt docs site (``var/dbt/docs``) as a FastAPI app."""
    from huiju.transform import docs_dir

    return _static_app("Huiju dbt docs", docs_dir())


def data_docs_app() -> Any:
    """Great Expectations' Data Docs site (``var/gx/…/local_site``) as a FastAPI app."""
    from huiju.settings import get_settings

    return _static_app("Huiju Data Docs", get_settings().var / "gx" / "uncommitted" / "data_docs" / "local_site")


class HuijuPlugin(AirflowPlugin):
    """Huiju's additions to Airflow: dbt docs and GX Data Docs; the stewards' dashboard later."""

    name = "huiju"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": dbt_docs_app(), "url_prefix": DBT_DOCS_PREFIX, "name": "Huiju dbt docs"},
        {"app": data_docs_app(), "url_prefix": DATA_DOCS_PREFIX, "name": "Huiju Data Docs"},
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [{
        "name": "数据仓库文档 (dbt docs)",
        "href": DBT_DOCS_PREFIX.lstrip("/") + "/",  # relative: works behind a reverse proxy
        "destination": "nav",
        "category": "browse",
        "url_route": "huiju-dbt-docs",
    }]
