"""Logging in and out, and changing one's password (登录、退出、修改密码)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from huiju_portal import audit
from huiju_portal.accounts import AccountError, authenticate, change_password
from huiju_portal.deps import Conn, CsrfChecked, CurrentSession, client_addr, settings_of
from huiju_portal.pages import local_time, render
from huiju_portal.sessions import COOKIE, create_session, load_session, revoke_other_sessions, revoke_session
from huiju_portal.throttle import clear_failures, lockout, record_failure

router = APIRouter()
FormText = Annotated[str, Form()]
# Before a session exists, the login form is protected by a double-submit token: a cookie and a field.
LOGIN_COOKIE = "huiju_portal_login"


def _safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (never ``//host`` or a full URL)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) and "\n" not in target:
        return target
    return "/"


def _login_page(request: Request, status: int = 200, next_path: str | None = None, **context: object) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", status, login_token=token,
                      next=_safe_next(next_path or request.query_params.get("next")), **context)
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict", path="/login",
                        secure=settings_of(request).secure_cookies)
    return response


@router.get("/login")
def login_form(request: Request, conn: Conn) -> Response:
    """The login page (straight to the home page when already logged in)."""
    if load_session(conn, request.cookies.get(COOKIE), settings_of(request)) is not None:
        return RedirectResponse("/", status_code=303)
    expired = request.query_params.get("expired") == "1"
    return _login_page(request, notice="会话已过期或已退出，请重新登录" if expired else None)


@router.post("/login")
def login(request: Request, conn: Conn, username: FormText = "", password: FormText = "", login_token: FormText = "",
          next: FormText = "/") -> Response:
    """Check the credentials (throttled) and start a session."""
    settings = settings_of(request)
    addr = client_addr(request)
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), login_token.encode()):
        return _login_page(request, 400, error="登录页面已过期，请重新输入用户名和密码", username=username,
                           next_path=next)
    name = username.strip().lower()
    locked = lockout(conn, name, addr, settings)
    if locked is not None:
        audit.record(conn, "login_locked", username=name[:100], client_addr=addr, scope=locked.scope)
        until = local_time(locked.until, "%H:%M")
        who = "该账号" if locked.scope == "account" else "您所在的网络地址"
        return _login_page(request, 429, error=f"登录失败次数过多，{who}已被暂时锁定，请于{until}后再试，"
                                               "或联系数据管理员解锁", username=username, next_path=next)
    account = authenticate(conn, name, password) if name and password else None
    if account is None:
        record_failure(conn, name or "(空)", addr)
        audit.record(conn, "login_failed", username=name[:100], client_addr=addr)
        return _login_page(request, 401, error="用户名或密码错误", username=username, next_path=next)
    clear_failures(conn, name)
    token = create_session(conn, account, addr, settings)
    audit.record(conn, "login", account_id=account.account_id, username=account.username,
                 department=account.department, client_addr=addr)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", path="/", secure=settings.secure_cookies)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, session: CsrfChecked,
           conn: Conn) -> Response:
    """End the session."""
    revoke_session(conn, session.token)
    audit.record(conn, "logout", account_id=session.account.account_id, username=session.account.username,
                 department=session.account.department, client_addr=client_addr(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/account/password")
def password_form(request: Request, session: CurrentSession) -> Response:
    """The page to change one's password (required first when the password is temporary)."""
    return render(request, "password.html", forced=session.account.must_change_password)


@router.post("/account/password")
def password_change(request: Request, session: CsrfChecked, conn: Conn, current: FormText = "", new: FormText = "",
                    confirm: FormText = "") -> Response:
    """Change one's password; the account's other sessions end."""
    forced = session.account.must_change_password
    if new != confirm:
        return render(request, "password.html", 400, error="两次输入的新密码不一致", forced=forced)
    try:
        with conn.transaction():
            change_password(conn, session.account, current, new)
            revoke_other_sessions(conn, session.account.account_id, session.token)
            audit.record(conn, "password_changed", account_id=session.account.account_id,
                         username=session.account.username, department=session.account.department,
                         client_addr=client_addr(request))
    except AccountError as exc:
        return render(request, "password.html", 400, error=str(exc), forced=forced)
    return RedirectResponse("/?password=changed", status_code=303)
