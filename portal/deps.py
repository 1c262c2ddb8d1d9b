"""What every route depends on: a database connection, the session, a permission, a valid CSRF token, a scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request

from huiju.registry import Registry
from huiju_portal.config import PortalSettings
from huiju_portal.roles import Permission
from huiju_portal.scope import DepartmentScope
from huiju_portal.sessions import COOKIE, Session, load_session

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Pages reachable while the password must still be changed.
_PASSWORD_CHANGE_PATHS = ("/account/password", "/logout")


class LoginRequired(Exception):
    """No live session: the visitor goes to the login page (and comes back to ``next_path`` after)."""

    def __init__(self, next_path: str, expired: bool):
        self.next_path = next_path
        self.expired = expired
        super().__init__(next_path)


class Forbidden(Exception):
    """The account may not do this (HTTP 403, a page in Chinese)."""


class NotFound(Exception):
    """Nothing here for this account (HTTP 404): what does not exist and what belongs to others look the same."""


class PasswordChangeRequired(Exception):
    """The account logs in with a temporary password that must be changed first."""


def settings_of(request: Request) -> PortalSettings:
    """The portal's settings."""
    return request.app.state.settings


def registry_of(request: Request) -> Registry:
    """The registry loaded at start-up."""
    return request.app.state.registry


def client_addr(request: Request) -> str:
    """The client's address: the peer, or the first X-Forwarded-For hop when the peer is a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    settings = settings_of(request)
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in settings.trusted_proxies:
        return forwarded.split(",")[0].strip()[:64]
    return peer


def db(request: Request) -> Iterator[psycopg.Connection]:
    """A warehouse connection for the request (autocommit: writes group themselves in transactions)."""
    with psycopg.connect(request.app.state.warehouse_url, autocommit=True) as conn:
        yield conn


def current_session(request: Request, conn: Annotated[psycopg.Connection, Depends(db)]) -> Session:
    """The visitor's live session; otherwise :class:`LoginRequired`."""
    token = request.cookies.get(COOKIE)
    session = load_session(conn, token, settings_of(request))
    if session is None:
        query = f"?{request.url.query}" if request.url.query else ""
        raise LoginRequired(request.url.path + query, expired=token is not None)
    request.state.session = session
    if session.account.must_change_password and request.url.path not in _PASSWORD_CHANGE_PATHS:
        raise PasswordChangeRequired()
    return session


def require(permission: Permission) -> Callable[..., Session]:
    """A dependency: the session, if its account may do ``permission``; otherwise :class:`Forbidden`."""
    def dependency(session: Annotated[Session, Depends(current_session)]) -> Session:
        if not session.account.can(permission):
            raise Forbidden(permission.value)
        return session

    return dependency


async def csrf_checked(request: Request, session: Annotated[Session, Depends(current_session)]) -> Session:
    """The session, once the POST carries its CSRF token (form field or header); otherwise :class:`Forbidden`."""
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not session.csrf_ok(presented):
        raise Forbidden("csrf")
    return session


def scope_of(request: Request, session: Annotated[Session, Depends(require(Permission.VIEW_SUBMISSIONS))],
             department: str | None = None) -> DepartmentScope:
    """The departments the session may see (a steward's ``?department=`` choice, or all)."""
    return DepartmentScope.for_account(session.account, registry_of(request), department)


# The dependencies as annotations (FastAPI's recommended form): ``conn: Conn``, ``session: Submitter`` …
Conn = Annotated[psycopg.Connection, Depends(db)]
CurrentSession = Annotated[Session, Depends(current_session)]
CsrfChecked = Annotated[Session, Depends(csrf_checked)]
Submitter = Annotated[Session, Depends(require(Permission.SUBMIT))]
Steward = Annotated[Session, Depends(require(Permission.MANAGE_ACCOUNTS))]
Scope = Annotated[DepartmentScope, Depends(scope_of)]
