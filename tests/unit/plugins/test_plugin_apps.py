"""The Huiju Airflow plugin: dbt docs in the Browse menu (no Data Docs), apps built on first request, not at import."""

from __future__ import annotations

from pathlib import Path


def test_the_dbt_docs_are_in_the_browse_menu_and_served_lazily_and_data_docs_are_gone(scratch_var: Path) -> None:
    from huiju_airflow.plugin import DBT_DOCS_PREFIX, HuijuPlugin, LazyApp
    from starlette.testclient import TestClient

    views = {view["href"]: view for view in HuijuPlugin.external_views}
    view = views[DBT_DOCS_PREFIX.lstrip("/") + "/"]
    assert (view["destination"], view["category"]) == ("nav", "browse") and "dbt docs" in view["name"]
    # Great Expectations' Data Docs load their assets from public CDNs: neither served nor linked (the dashboard
    # shows each batch's results).
    assert not any("Data Docs" in v["name"] or "data-docs" in v["href"] for v in HuijuPlugin.external_views)
    assert not any("data-docs" in app["url_prefix"] for app in HuijuPlugin.fastapi_apps)

    apps = {app["url_prefix"]: app["app"] for app in HuijuPlugin.fastapi_apps}
    lazy = apps[DBT_DOCS_PREFIX]
    assert isinstance(lazy, LazyApp)
    fresh = LazyApp(lazy.factory)  # the plugin's own may have served another test already
    assert fresh._app is None  # nothing built by importing the plugin
    site = scratch_var / "dbt" / "docs"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<html>dbt docs</html>", encoding="utf-8")
    # Built on this first request, and behind Airflow's login (test_auth.py serves it to a logged-in user).
    assert TestClient(fresh).get("/").status_code == 401
    assert fresh._app is not None


def test_the_dashboard_is_in_the_navigation_built_lazily_and_serves_its_own_echarts() -> None:
    from huiju_airflow.dashboard import ECHARTS, HERE, embedded_json
    from huiju_airflow.plugin import DASHBOARD_PREFIX, HuijuPlugin, LazyApp

    views = {view["href"]: view for view in HuijuPlugin.external_views}
    view = views[DASHBOARD_PREFIX.lstrip("/") + "/"]
    assert view["destination"] == "nav" and "category" not in view and view["name"] == "数据报送监控看板"
    apps = {app["url_prefix"]: app["app"] for app in HuijuPlugin.fastapi_apps}
    assert isinstance(apps[DASHBOARD_PREFIX], LazyApp)
    script = (HERE / "static" / ECHARTS).read_text(encoding="utf-8")
    assert len(script) > 500_000 and "echarts" in script[:2000]  # the library itself, not a loader from a CDN
    assert embedded_json({"reference": "</script><script>alert(1)"}) == \
        '{"reference": "\\u003c/script>\\u003cscript>alert(1)"}'
