"""The Airflow plugin entry point (registered through the ``airflow.plugins`` entry point).

The stewards' dashboard (:mod:`huiju_airflow.dashboard`, ``/huiju-dashboard/``, in the UI's navigation) and
the dbt docs (``var/dbt/docs``, written by ``huiju.transform.generate_docs``, linked from the UI's Browse
menu) are mounted on the API server as FastAPI apps. Great Expectations' Data Docs are not: they load
their assets from public CDNs, and the dashboard shows each batch's validation results itself.

The apps are built on their first request (:class:`LazyApp`), not when Airflow imports the
plugin. Airflow mounts a plugin's app without its login; both are behind it all the same
(:mod:`huiju_airflow.auth`): an anonymous visitor is refused (a browser is sent to the login page).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from huiju.monitoring import DASHBOARD_PATH

DBT_DOCS_PREFIX = "/huiju-dbt-docs"
DASHBOARD_PREFIX = "/" + DASHBOARD_PATH.rstrip("/")


def _static_app(title: str, site: Any) -> Any:
    # why: every Airflow process imports the plugin; only the API server builds the app (FastAPI, the auth manager)
    from huiju_airflow.auth import protected_static_app

    return protected_static_app(title, site)


def dbt_docs_app() -> Any:
    """The dbt docs site (``var/dbt/docs``) as a FastAPI app."""
    from huiju.transform import docs_dir  # why: dbt is heavy; importing the plugin must stay cheap

    return _static_app("Huiju dbt docs", docs_dir())


def dashboard_app() -> Any:
    """The stewards' dashboard (:mod:`huiju_airflow.dashboard`) as a FastAPI app."""
    # why: FastAPI, Jinja2 and the auth manager are the API server's; other Airflow processes import the plugin too
    from huiju_airflow.dashboard import create_dashboard_app

    return create_dashboard_app()


class LazyApp:
    """An ASGI app built on its first request, so importing the plugin (every Airflow process does) stays cheap.

    Airflow mounts a plugin's ``app`` as it is (any ASGI callable); only the API server ever calls it.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Build the app once, then hand every request to it."""
        if self._app is None:
            self._app = self.factory()
        await self._app(scope, receive, send)


def _nav(name: str, prefix: str, category: str | None = "browse") -> dict[str, Any]:
    view = {
        "name": name,
        "href": prefix.lstrip("/") + "/",  # relative: works behind a reverse proxy
        "destination": "nav",
        "url_route": prefix.lstrip("/"),
    }
    return {**view, "category": category} if category else view


class HuijuPlugin(AirflowPlugin):
    """Huiju's additions to Airflow: the stewards' dashboard in the navigation; the dbt docs under Browse."""

    name = "huiju"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": LazyApp(dbt_docs_app), "url_prefix": DBT_DOCS_PREFIX, "name": "Huiju dbt docs"},
        {"app": LazyApp(dashboard_app), "url_prefix": DASHBOARD_PREFIX, "name": "Huiju stewards' dashboard"},
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        _nav("数据仓库文档 (dbt docs)", DBT_DOCS_PREFIX),
        _nav("数据报送监控看板", DASHBOARD_PREFIX, category=None),
    ]
