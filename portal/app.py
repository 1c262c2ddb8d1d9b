"""The portal's web application: :func:`create_app` assembles settings, middleware, routers and error pages."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from huiju import warehouse
from huiju.registry import Registry, load_registry
from huiju.sharing.config import load_policy
from huiju_portal.config import PortalSettings, get_portal_settings
from huiju_portal.data_api import PREFIX as DATA_API_PREFIX
from huiju_portal.data_api import create_data_api
from huiju_portal.deps import Forbidden, LoginRequired, NotFound, PasswordChangeRequired
from huiju_portal.pages import render
from huiju_portal.routers import ROUTERS
from huiju_portal.sessions import COOKIE
from huiju_portal.uploads import clean_work_dir

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
# Every asset comes from the portal itself; no script or style is inline, no request leaves it.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self';"
       " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def warm_up() -> None:
    """Import Great Expectations (seconds) once at start-up, so that the first upload does not wait for it."""
    try:
        # why: importing is the point of warming up, done in a thread at start-up rather than at the first upload
        import great_expectations  # noqa: F401

        import huiju.quality.expectations  # noqa: F401 - the custom expectation types validation registers
    except Exception:  # warming up is an optimisation: a failure shows at the first validation instead
        log.exception("portal: warming up Great Expectations failed")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The portal connects as its own login role (huiju.warehouse.COMPONENT_ROLES), never as the admin; with no
    # URL given, warehouse_url() starts the embedded PostgreSQL if needed and migrates.
    # The sharing pages and the data service API act as the sharing component (huiju/sql/210_sharing.sql).
    app.state.sharing_url = warehouse.role_url("sharing", app.state.warehouse_url)
    app.state.warehouse_url = warehouse.role_url("portal", app.state.warehouse_url)
    clean_work_dir(app.state.settings.work_dir)
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    yield


class SecurityHeaders:
    """Security headers on every response; POSTs from another origin refused (pure ASGI, no body buffering)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["method"] == "POST" and not _same_origin(headers):
            response = PlainTextResponse("请求来源不被接受（跨站请求）", status_code=403)
            await response(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY"),
                         (b"cross-origin-opener-policy", b"same-origin")]
                if not static:  # pages hold a department's data: never kept by a shared cache or the back button
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _same_origin(headers: dict[str, str]) -> bool:
    """Whether a POST comes from the portal's own pages: its Origin (or Referer) names this host.

    A request with neither (a script, a test client) is let through: the CSRF token is the check
    that counts; this one refuses what a browser says came from elsewhere (``Origin: null`` too).
    """
    origin = headers.get("origin") or headers.get("referer")
    if origin is None:
        return True
    return origin != "null" and urlsplit(origin).netloc == headers.get("host")


def create_app(settings: PortalSettings | None = None, *, registry: Registry | None = None,
               warehouse_url: str | None = None) -> FastAPI:
    """The portal application (``warehouse_url`` and ``registry`` default to the platform's own)."""
    app = FastAPI(title="汇聚平台 · 部门门户", docs_url=None, redoc_url=None, openapi_url=None, lifespan=_lifespan)
    app.state.settings = settings or get_portal_settings()
    app.state.registry = registry or load_registry()
    app.state.warehouse_url = warehouse_url
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
    # The data service API: an application of its own (token, not login; its own OpenAPI description).
    app.mount(DATA_API_PREFIX, create_data_api(lambda: app.state.sharing_url, load_policy().api))

    @app.get("/healthz", include_in_schema=False)
    def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return RedirectResponse("/static/favicon.svg", status_code=301)

    @app.exception_handler(LoginRequired)
    def login_required(request: Request, exc: LoginRequired) -> Response:
        target = "/login?next=" + quote(exc.next_path, safe="/") + ("&expired=1" if exc.expired else "")
        response = RedirectResponse(target, status_code=303)
        if exc.expired:
            response.delete_cookie(COOKIE, path="/")
        return response

    @app.exception_handler(PasswordChangeRequired)
    def password_change(request: Request, exc: PasswordChangeRequired) -> Response:
        return RedirectResponse("/account/password", status_code=303)

    @app.exception_handler(Forbidden)
    def forbidden(request: Request, exc: Forbidden) -> Response:
        message = ("页面已过期或请求不完整（安全校验未通过），请返回上一页刷新后重试" if str(exc) == "csrf"
                   else "您的账号没有执行此操作的权限")
        return render(request, "error.html", 403, title="无权访问", message=message)

    @app.exception_handler(NotFound)
    def not_found(request: Request, exc: NotFound) -> Response:
        return render(request, "error.html", 404, title="未找到", message="页面不存在，或您无权查看")

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return render(request, "error.html", 400, title="请求有误", message="请求的参数不正确，请返回上一页重试")

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "未找到", 405: "不支持的请求", 413: "文件过大", 411: "请求不完整"}
        message = "页面不存在，或您无权查看" if exc.status_code == 404 else str(exc.detail)
        return render(request, "error.html", exc.status_code, title=titles.get(exc.status_code, "请求有误"),
                      message=message)

    return app
