"""The stewards' dashboard as Airflow serves it (its auth manager, the plugin mounted by ``init_plugins``), in
headless chromium with the network cut, on the demo's monitoring data: it renders with its charts, its numbers are
the ledger's, a department drills down to a batch — Great Expectations' results of it (offline)
and its masked problem rows — and nobody anonymous gets anything. Screenshots are kept as test artefacts
(``tests/support/browser.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from huiju_airflow.plugin import DASHBOARD_PREFIX
from huiju_demo.history import ANOMALY_SOURCE, MISSING_SOURCE

from tests.support.browser import BrowserSession
from tests.support.dashboard import DemoMonitoring, ServedAirflow, serving_airflow_plugins

pytestmark = pytest.mark.browser  # besides integration, from the folder

CLEAR_ID = re.compile(r"\d{17}[\dXx]")
CLEAR_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


@pytest.fixture(scope="module")
def airflow(demo_monitoring: DemoMonitoring, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAirflow]:
    tmp = tmp_path_factory.mktemp("dashboard-airflow")
    with serving_airflow_plugins(tmp / "airflow", demo_monitoring.var, demo_monitoring.url) as served:
        yield served


def _logged_in(browser: BrowserSession, airflow: ServedAirflow) -> None:
    # The UI's session cookie, as Airflow's login page sets it after a password login.
    browser.page.context.add_cookies([{"name": "_token", "value": airflow.token, "url": airflow.url + "/"}])


def _ledger(demo: DemoMonitoring, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(demo.url) as conn:
        return conn.execute(sql, params).fetchall()


def test_the_dashboard_renders_the_ledgers_numbers_and_drills_down_to_masked_rows(
        browser_page: BrowserSession, airflow: ServedAirflow, demo_monitoring: DemoMonitoring) -> None:
    page = browser_page.page
    _logged_in(browser_page, airflow)
    page.goto(f"{airflow.url}{DASHBOARD_PREFIX}/")
    page.wait_for_selector("#ranking-chart[data-drawn=true] canvas")
    page.wait_for_selector("#trend-chart[data-drawn=true] canvas")
    assert page.title() == "总览 · 数据报送监控看板"
    assert page.evaluate("getComputedStyle(document.querySelector('.topbar')).display") == "flex"  # styled
    browser_page.screenshot("overview")

    # The overdue list is the ledger's: every period past its last on-time day with nothing usable.
    as_of = demo_monitoring.as_of
    overdue = _ledger(demo_monitoring, "select source_id from ops.submissions where late_after < %s and"
                      " (delivered_at is null or (delivered_at at time zone 'Asia/Shanghai')::date > %s)", as_of, as_of)
    assert page.inner_text("#overdue-count") == str(len(overdue))
    counted = sum(int(n) for n in page.locator("#state-counts .stat-n").all_inner_texts())
    # The 通报 row of 税务局 has the ledger's periods due and delivered.
    month = demo_monitoring.day.strftime("%Y-%m")
    [(due, delivered)] = _ledger(
        demo_monitoring, "select count(*) filter (where status in ('on_time', 'late', 'held', 'missing')),"
        " count(*) filter (where status in ('on_time', 'late')) from ops.submissions where department = 'swj'"
        " and to_char(period_end, 'YYYY-MM') = %s", month)
    cells = page.locator("#ranking tr[data-department=swj] td").all_inner_texts()
    assert (cells[1], cells[2], cells[3]) == ("税务局", str(due), str(delivered))
    # 税务局's overdue periods, counted on the overview, listed one by one with the 催报 step each reached.
    swj = page.locator("#overdue-departments tr[data-department=swj]")
    assert "税务局" in swj.inner_text()
    swj.locator("td.num a").click()
    page.wait_for_selector("#overdue")
    missed = page.locator(f"#overdue tr[data-source={MISSING_SOURCE}]").first
    assert "税务局" in missed.inner_text() and "督办" in missed.inner_text()
    assert page.locator("#overdue tbody tr[data-source]").count() == \
        len(_ledger(demo_monitoring, "select source_id from ops.submissions where department = 'swj'"
                    " and late_after < %s and (delivered_at is null"
                    " or (delivered_at at time zone 'Asia/Shanghai')::date > %s)", as_of, as_of))
    browser_page.screenshot("overdue")
    # The state counts add up to the sources, each listed with its state.
    page.goto(f"{airflow.url}{DASHBOARD_PREFIX}/sources")
    assert page.locator("#sources tbody tr").count() == counted == \
        sum(int(n) for n in page.locator("#state-counts .stat-n").all_inner_texts())
    page.goto(f"{airflow.url}{DASHBOARD_PREFIX}/")
    page.wait_for_selector("#ranking-chart[data-drawn=true] canvas")

    # Department → its batches (the anomalous one flagged) → the batch's problem rows, masked.
    page.click("#ranking tr[data-department=scjgj] a")
    page.wait_for_selector("#department-chart[data-drawn=true] canvas")
    load_id = demo_monitoring.day_loads[ANOMALY_SOURCE]
    row = page.locator(f"#batches tr[data-load='{load_id}']")
    assert "异常预警" in row.inner_text()
    browser_page.screenshot("department")
    row.locator("a").click()
    page.wait_for_selector("#quarantined")
    [(quarantined,)] = _ledger(demo_monitoring, "select count(*) from quarantine.rows where load_id = %s", load_id)
    assert page.inner_text("#rows-quarantined") == str(quarantined) and quarantined > 0
    assert page.locator("#quarantined tbody tr[data-row]").count() >= quarantined
    text = page.inner_text("#quarantined")
    assert not CLEAR_ID.search(text) and not CLEAR_MOBILE.search(text)
    # Great Expectations' results of the batch, styled, with nothing fetched from the internet.
    failed = _ledger(demo_monitoring, "select field from ops.validation_results where load_id = %s and not success",
                     load_id)
    assert page.locator("#checks tr[data-success=false]").count() == len(failed) > 0
    assert page.locator("#checks tr[data-success=true]").count() > 0
    badge = page.locator("#checks tr[data-success=false] .badge").first
    assert badge.inner_text() == "未通过" and page.evaluate(
        "e => getComputedStyle(e).backgroundColor", badge.element_handle()) != "rgba(0, 0, 0, 0)"
    browser_page.screenshot("batch")
    # Every request stayed on this machine (browser_page asserts it too), ECharts among them.
    assert any(url.endswith(".min.js") for url in browser_page.requests)


def test_an_anonymous_visitor_gets_nothing(browser_page: BrowserSession, airflow: ServedAirflow,
                                           demo_monitoring: DemoMonitoring) -> None:
    load_id = demo_monitoring.day_loads[ANOMALY_SOURCE]
    paths = ["/", "/api/overview", "/sources", "/api/sources", "/overdue", "/api/overdue?department=swj",
             "/departments/scjgj", "/api/departments/scjgj",
             f"/departments/scjgj/batches/{load_id}", f"/api/departments/scjgj/batches/{load_id}",
             "/static/dashboard.js", "/reports"]
    with httpx.Client(base_url=airflow.url + DASHBOARD_PREFIX, follow_redirects=False) as client:
        for path in paths:
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"Authorization": "Bearer forged"}).status_code in (401, 403), path
            served = client.get(path, headers={"Authorization": f"Bearer {airflow.token}"})
            assert served.status_code == 200, path
            assert served.headers["content-security-policy"].startswith("default-src 'self'"), path
            assert served.headers["x-content-type-options"] == "nosniff", path
            # figures and quarantined rows are never cached; the app's own assets may be
            assert (served.headers.get("cache-control") == "no-store") != path.startswith("/static/"), path
        overdue = client.get("/api/overdue", headers={"Authorization": f"Bearer {airflow.token}"}).json()
        overview = client.get("/api/overview", headers={"Authorization": f"Bearer {airflow.token}"}).json()
    assert any(item["source_id"] == MISSING_SOURCE for item in overdue["overdue"])
    assert overview["overdue_periods"] == len(overdue["overdue"])
    # A browser is sent to Airflow's login page, which brings it back afterwards.
    page = browser_page.page
    response = page.goto(f"{airflow.url}{DASHBOARD_PREFIX}/departments/scjgj")
    assert "/auth/login" in page.url and "huiju-dashboard" in page.url
    assert response is None or response.status in (200, 404)  # this test server has no login page itself
    assert "市场监督管理局" not in page.content()



def test_a_steward_finds_the_archived_reports_and_downloads_them(
        browser_page: BrowserSession, airflow: ServedAirflow, demo_monitoring: DemoMonitoring) -> None:
    # An archived period, as huiju.reports.delivery leaves it: files under var/reports, a row in the index.
    folder = demo_monitoring.var / "reports" / "monthly_bulletin" / "2026-11"
    (folder / "charts").mkdir(parents=True, exist_ok=True)
    workbook = folder / "monthly_bulletin-2026-11.xlsx"
    workbook.write_bytes(b"PK\x03\x04 the archived workbook")
    chart = folder / "charts" / "penalties_by_district.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\n the archived chart")
    with psycopg.connect(demo_monitoring.url) as conn:
        conn.execute("insert into ops.analysis_reports (report_id, period, title, as_of, workbook, workbook_sha256,"
                     " charts) values ('monthly_bulletin', '2026-11', '信用信息月度通报', '2026-11-30 16:00+00',"
                     " %s, 'x', %s) on conflict do nothing",
                     (str(workbook.relative_to(demo_monitoring.var)), [str(chart.relative_to(demo_monitoring.var))]))
    page = browser_page.page
    _logged_in(browser_page, airflow)
    page.goto(f"{airflow.url}{DASHBOARD_PREFIX}/")
    page.click("#nav-reports")
    row = page.locator("#reports tr[data-report=monthly_bulletin][data-period='2026-11']")
    assert "信用信息月度通报" in row.inner_text() and "2026-12-01 00:00" in row.inner_text()  # as of, Beijing time
    browser_page.screenshot("reports")
    with page.expect_download() as downloading:
        row.locator("a.download").click()
    download = downloading.value
    assert download.suggested_filename == workbook.name
    assert Path(download.path()).read_bytes() == workbook.read_bytes()
    # The chart too; nothing of the archive for anyone not logged in, nothing outside it for anyone.
    prefix = "/reports/monthly_bulletin/2026-11"
    authorised = {"Authorization": f"Bearer {airflow.token}"}
    with httpx.Client(base_url=airflow.url + DASHBOARD_PREFIX, follow_redirects=False) as client:
        served = client.get(f"{prefix}/charts/penalties_by_district.png", headers=authorised)
        assert served.status_code == 200 and served.content == chart.read_bytes()
        assert served.headers["content-type"] == "image/png"
        for path in (f"{prefix}/workbook", f"{prefix}/charts/penalties_by_district.png"):
            assert client.get(path).status_code == 401, path
        assert client.get(f"{prefix}/charts/..%2F..%2F..%2Findex.json", headers=authorised).status_code == 404
        assert client.get("/reports/monthly_bulletin/1999-01/workbook", headers=authorised).status_code == 404
