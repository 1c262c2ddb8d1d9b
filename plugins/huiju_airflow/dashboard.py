"""The stewards' dashboard (数据报送监控看板) on Airflow's API server: pages and their data, behind Airflow's login.

Mounted by the plugin at ``/huiju-dashboard/`` and shown in the Airflow UI's navigation (``external_views``).
Every page, data endpoint (``api/…``, JSON) and asset (``static/…``) answers only a logged-in Airflow
user (:func:`huiju_airflow.auth.airflow_user`). The figures come from :mod:`huiju.monitoring.dashboard`,
read as the ``dashboard`` component (``huiju_dashboard``: select on ``ops`` and ``quarantine`` only);
this module renders them. Charts are drawn by ECharts, served from this package (``static/``, no CDN):
a government intranet has no internet, and the Content-Security-Policy lets the page load nothing
from anywhere but here.

Pages: 总览 (``/``: how many sources are in each state, 逾期未报 per department with how far up the 催报
ladder, the month's 通报 as table and chart, each department's trend), 各数据项报送状态 (``sources``: every
source's state), 逾期未报明细 (``overdue``: every overdue period with its 催报 step), a department
(``departments/<code>``: its month's cards, its batches), a batch (``departments/<code>/batches/<load_id>``:
its quarantined rows, masked), 分析报告 (``reports``: the scheduled reports' archive, each period's workbook
and charts downloadable, ``reports/<id>/<period>/…``). Links are relative, so the app works behind a reverse
proxy and inside the UI's frame.
"""

from __future__ import annotations

import json
from dataclasses import is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates
from psycopg_pool import ConnectionPool
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from huiju.monitoring import dashboard as figures
from huiju.monitoring.ledger import today
from huiju.monitoring.reminders import LEVEL_LABELS, LEVELS, LOOKBACK_DAYS
from huiju.monitoring.scorecards import Scorecard, month_bounds, percent
from huiju.registry import Registry, load_registry
from huiju.reports.delivery import REPORTS_FOLDER
from huiju.settings import TIMEZONE, get_settings
from huiju.warehouse import role_url
from huiju_airflow.auth import airflow_user

HERE = Path(__file__).resolve().parent
#: ``?page=N`` of a department's batches (huiju.monitoring.dashboard.BATCHES_PER_PAGE a page).
BatchPage = Annotated[int, Query(ge=1, alias="page")]
ECHARTS = "echarts-5.6.0.min.js"  # Apache ECharts 5.6.0 (npm package echarts, dist/), licence beside it
#: Scripts and styles from this app only; ECharts sets styles on the elements it draws (tooltips).
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; "
                           "form-action 'self'")


def _plain(value: Any) -> Any:
    """What :func:`json.dumps` cannot write itself: dates as ISO text, the figures' dataclasses as their fields."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if is_dataclass(value):
        return dict(vars(value))
    raise TypeError(f"not JSON: {type(value).__name__}")


def to_json(figures_json: Any) -> str:
    """The figures as JSON text (FastAPI's ``jsonable_encoder`` walks them several times slower)."""
    return json.dumps(figures_json, ensure_ascii=False, default=_plain)


def card_json(card: Scorecard) -> dict[str, Any]:
    """A scorecard with its rates and score (what the tables and charts show)."""
    return {**vars(card), "timeliness": card.timeliness, "completeness": card.completeness,
            "quality": card.quality, "correction": card.correction, "score": card.score}


def overview_chart_json(view: figures.Overview) -> dict[str, Any]:
    """What the overview's charts draw, and only that (it travels inside the page): the month's 通报 (each
    department's score, 报送及时率 and 数据合格率, best first) and each department's 报送及时率 month by month
    (one value per month of ``months``, None for a month with no card)."""
    def timeliness_by_month(cards: list[Scorecard]) -> list[float | None]:
        by_month = {card.month: card.timeliness for card in cards}
        return [by_month.get(month) for month in view.months]

    return {
        "months": view.months,
        "ranking": [{"department_name": view.names.get(r.card.department, r.card.department), "score": r.card.score,
                     "timeliness": r.card.timeliness, "quality": r.card.quality} for r in view.ranked],
        "trend": {code: {"name": view.names.get(code, code), "timeliness": timeliness_by_month(cards)}
                  for code, cards in sorted(view.trend.items())},
    }


def overview_json(view: figures.Overview) -> dict[str, Any]:
    """The overview's figures as JSON (``api/overview``): the month's 通报 and each month's whole card, the tables'."""
    return {
        "month": view.month, "months": view.months,
        "ranking": [{"rank": r.rank, "department_name": view.names.get(r.card.department, r.card.department),
                     **card_json(r.card)} for r in view.ranked],
        "trend": {code: {"name": view.names.get(code, code), "cards": [card_json(c) for c in cards]}
                  for code, cards in sorted(view.trend.items())},
        "as_of": view.as_of, "older_overdue": view.older_overdue,
        "state_counts": view.state_counts, "state_labels": figures.STATE_LABELS,
        "overdue_periods": view.overdue_periods, "overdue_departments": view.overdue_departments,
    }


def sources_json(as_of: date, states: list[figures.SourceState]) -> dict[str, Any]:
    """Every source's state as JSON (``api/sources``)."""
    return {"as_of": as_of, "states": [{**vars(s), "state_label": s.state_label} for s in states]}


def overdue_json(as_of: date, items: list[figures.OverdueItem], older: int) -> dict[str, Any]:
    """The overdue list, period by period with its 催报 step, as JSON (``api/overdue``)."""
    return {"as_of": as_of, "older_overdue": older,
            "overdue": [{**vars(o.reminder), "department_name": o.department_name, "title": o.title,
                         "ladder_step": o.ladder_step, "ladder_label": o.ladder_label, "notified_at": o.notified_at}
                        for o in items]}


def department_json(detail: figures.DepartmentDetail, registry: Registry, *, batches: bool = True) -> dict[str, Any]:
    """A department's figures as JSON (each source's card with its title; without ``batches``: what the chart draws)."""
    def titled(card: Scorecard) -> dict[str, Any]:
        source = registry.sources.get(card.source_id or "")
        return {**card_json(card), "title": source.title if source else None}

    figures_json: dict[str, Any] = {"department": detail.department, "name": detail.name, "month": detail.month,
                                    "cards": [titled(c) for c in detail.cards]}
    if batches:
        figures_json["batches"] = [{**vars(b), "status_label": b.status_label} for b in detail.batches]
        figures_json.update(batch_count=detail.batch_count, page=detail.page, pages=detail.pages)
    return figures_json


def batch_json(detail: figures.BatchDetail) -> dict[str, Any]:
    """A batch, its quality checks and its quarantined rows (masked) as JSON."""
    return {"batch": {**vars(detail.batch), "status_label": detail.batch.status_label},
            "department_name": detail.department_name, "total_rows": detail.total_rows,
            "checks": detail.checks, "rows": detail.rows}


def embedded_json(figures_json: dict[str, Any]) -> str:
    """JSON to put inside the page's ``<script type="application/json">``: no ``<`` can close the element."""
    return to_json(figures_json).replace("<", "\\u003c")


def local_time(moment: datetime | None, form: str = "%Y-%m-%d %H:%M") -> str:
    """A timestamp as the stewards read it: Asia/Shanghai time (``—`` for none)."""
    return "—" if moment is None else moment.astimezone(ZoneInfo(TIMEZONE)).strftime(form)


def json_response(figures_json: Any) -> Response:
    """A data endpoint's answer."""
    return Response(to_json(figures_json), media_type="application/json")


class SecurityHeaders:
    """Every answer's security headers; pages and data are never cached (figures and quarantined rows).

    A plain ASGI middleware: Starlette's ``@app.middleware("http")`` streams every body through a task
    and a queue, which cost a page more than its headers are worth.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = "/static/" in scope["path"]

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _month(month: str | None, as_of: date) -> str:
    if month is None:
        return figures.default_month(as_of)
    try:
        month_bounds(month)
    except ValueError:
        raise HTTPException(status_code=400, detail="月份格式应为 YYYY-MM") from None
    return month


def create_dashboard_app(registry: Registry | None = None, warehouse_url: str | None = None) -> FastAPI:
    """The dashboard as a FastAPI app (every route behind Airflow's login); ``warehouse_url`` default: the warehouse."""
    registry = registry or load_registry()
    app = FastAPI(title="Huiju stewards' dashboard", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(airflow_user)])
    templates = Jinja2Templates(directory=HERE / "templates")
    # The templates ship with the plugin and change only with it (a restart, like its code): no stat() of each
    # template a page extends or imports on every render to see whether it changed on disk.
    templates.env.auto_reload = False
    templates.env.filters["percent"] = percent
    templates.env.filters["local"] = local_time
    templates.env.globals["echarts"] = ECHARTS
    templates.env.globals["lookback_days"] = LOOKBACK_DAYS
    templates.env.globals["levels"] = LEVELS
    templates.env.globals["level_labels"] = LEVEL_LABELS
    templates.env.globals["titles"] = {source_id: source.title for source_id, source in registry.sources.items()}
    static = StaticFiles(directory=HERE / "static")
    # Connections as huiju_dashboard kept between requests (a new one costs a SCRAM exchange and a backend);
    # checked before use, so a restarted warehouse costs one failed check, not a failed page. Autocommit: the
    # pages only read, each statement with its own snapshot as in a read-committed transaction, without the
    # BEGIN and COMMIT round trips a transaction would add to every page.
    pool = ConnectionPool(role_url("dashboard", warehouse_url), min_size=1, max_size=4, open=True,
                          kwargs={"autocommit": True}, check=ConnectionPool.check_connection,
                          name="huiju-dashboard")
    app.state.pool = pool

    app.add_middleware(SecurityHeaders)

    def as_of_of(conn: Any, requested: date | None) -> date:
        """The day asked for, else the day the ledger was last derived for (the monitor's run), else today."""
        if requested is not None:
            return requested
        latest = conn.execute("select max(as_of) from ops.submissions").fetchone()[0]
        return latest or today()

    def page(request: Request, name: str, root: str, **context: Any) -> HTMLResponse:
        # ``root``: the app's own address relative to this page (links stay relative: proxies, the UI's frame)
        return templates.TemplateResponse(request, name, {"labels": figures.STATE_LABELS, "root": root, **context})

    def load_overview(as_of: date | None, month: str | None) -> figures.Overview:
        with pool.connection() as conn:
            day = as_of_of(conn, as_of)
            return figures.overview(conn, registry, day, _month(month, day))

    def load_sources(as_of: date | None) -> tuple[date, list[figures.SourceState]]:
        with pool.connection() as conn:
            day = as_of_of(conn, as_of)
            return day, figures.source_states(conn, registry, day)

    def load_overdue(as_of: date | None, department: str | None) -> tuple[date, list[figures.OverdueItem], int]:
        with pool.connection() as conn:
            day = as_of_of(conn, as_of)
            items = figures.overdue(conn, registry, day)
            older = figures.older_overdue(conn, day)
        return day, [o for o in items if department in (None, o.reminder.department)], older

    def load_department(code: str, as_of: date | None, month: str | None, page: int) -> figures.DepartmentDetail:
        with pool.connection() as conn:
            detail = figures.department_detail(conn, registry, code, _month(month, as_of_of(conn, as_of)), page)
        if detail is None:
            raise HTTPException(status_code=404, detail="没有这个部门")
        return detail

    def load_batch(code: str, load_id: str) -> figures.BatchDetail:
        with pool.connection() as conn:
            detail = figures.batch_detail(conn, registry, code, load_id)
        if detail is None:
            raise HTTPException(status_code=404, detail="没有这个批次")
        return detail

    @app.get("/", response_class=HTMLResponse)
    def overview_page(request: Request, as_of: date | None = None, month: str | None = None):
        view = load_overview(as_of, month)
        return page(request, "overview.html", "", view=view,
                    chart=embedded_json(overview_chart_json(view)))

    @app.get("/api/overview")
    def overview_data(as_of: date | None = None, month: str | None = None) -> Response:
        return json_response(overview_json(load_overview(as_of, month)))

    @app.get("/sources", response_class=HTMLResponse)
    def sources_page(request: Request, as_of: date | None = None):
        day, states = load_sources(as_of)
        return page(request, "sources.html", "", as_of=day, states=states, counts=figures.counted(states))

    @app.get("/api/sources")
    def sources_data(as_of: date | None = None) -> Response:
        return json_response(sources_json(*load_sources(as_of)))

    @app.get("/overdue", response_class=HTMLResponse)
    def overdue_page(request: Request, as_of: date | None = None, department: str | None = None):
        day, items, older = load_overdue(as_of, department)
        return page(request, "overdue.html", "", as_of=day, overdue=items, older_overdue=older, department=department,
                    department_name=registry.departments[department].name
                    if department in registry.departments else department)

    @app.get("/api/overdue")
    def overdue_data(as_of: date | None = None, department: str | None = None) -> Response:
        return json_response(overdue_json(*load_overdue(as_of, department)))

    @app.get("/departments/{code}", response_class=HTMLResponse)
    def department_page(request: Request, code: str, as_of: date | None = None,
                        month: str | None = None, page_no: BatchPage = 1):
        detail = load_department(code, as_of, month, page_no)
        return page(request, "department.html", "../", detail=detail,
                    chart=embedded_json(department_json(detail, registry, batches=False)))

    @app.get("/api/departments/{code}")
    def department_data(code: str, as_of: date | None = None, month: str | None = None,
                        page_no: BatchPage = 1) -> Response:
        return json_response(department_json(load_department(code, as_of, month, page_no), registry))

    @app.get("/departments/{code}/batches/{load_id}", response_class=HTMLResponse)
    def batch_page(request: Request, code: str, load_id: str):
        return page(request, "batch.html", "../../../", detail=load_batch(code, load_id), department=code)

    @app.get("/api/departments/{code}/batches/{load_id}")
    def batch_data(code: str, load_id: str) -> Response:
        return json_response(batch_json(load_batch(code, load_id)))

    def load_report(report_id: str, period: str) -> figures.ArchivedReport:
        with pool.connection() as conn:
            report = figures.archived_report(conn, report_id, period)
        if report is None:
            raise HTTPException(status_code=404, detail="没有这份报告")
        return report

    def archived_file(relative: str) -> Path:
        """A file of the reports' archive: the path comes from the index row, never from the request, and
        must lie under var/reports."""
        var = get_settings().var
        path = (var / relative).resolve()
        if not path.is_relative_to((var / REPORTS_FOLDER).resolve()) or not path.is_file():
            raise HTTPException(status_code=404, detail="报告文件不在归档中")
        return path

    @app.get("/reports", response_class=HTMLResponse)
    def reports_page(request: Request):
        with pool.connection() as conn:
            reports = figures.archived_reports(conn)
        return page(request, "reports.html", "", reports=reports)

    @app.get("/reports/{report_id}/{period}/workbook")
    def report_workbook(report_id: str, period: str) -> FileResponse:
        report = load_report(report_id, period)
        # media type from the file name (.xlsx), as Starlette guesses it
        return FileResponse(archived_file(report.workbook), filename=report.workbook_name)

    @app.get("/reports/{report_id}/{period}/charts/{name}")
    def report_chart(report_id: str, period: str, name: str) -> FileResponse:
        report = load_report(report_id, period)
        chart = next((c for c in report.charts if c.rsplit("/", 1)[-1] == name), None)
        if chart is None:
            raise HTTPException(status_code=404, detail="没有这张图表")
        return FileResponse(archived_file(chart), media_type="image/png")

    @app.api_route("/static/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def asset(path: str, request: Request) -> Response:
        scope = {**request.scope, "path": "/" + path}
        return await static.get_response(static.get_path(scope), scope)

    return app
