"""Server-side sessions: a random token in an HttpOnly cookie, its sha256 in ``portal.sessions``.

A session ends after ``session_idle`` without a request or ``session_lifetime`` after login,
whichever comes first, and at once when its holder logs out, is disabled, or gets a new
password. Each session has its own CSRF token (synchroniser pattern): every POST carries it
in a form field or the ``X-CSRF-Token`` header, and it is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from huiju_portal.accounts import Account, get_account
from huiju_portal.config import PortalSettings

COOKIE = "huiju_portal_session"
# last_seen_at is written at most this often: a page's assets do not each cost a write.
_TOUCH_EVERY = timedelta(seconds=30)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    """A live session and its account."""

    token: str
    account: Account
    csrf_token: str
    expires_at: datetime

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether ``presented`` is this session's CSRF token (constant-time)."""
        return bool(presented) and hmac.compare_digest(presented.encode(), self.csrf_token.encode())


def create_session(conn: psycopg.Connection, account: Account, client_addr: str, settings: PortalSettings) -> str:
    """Start a session for ``account``; returns the token for the cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    conn.execute(
        "insert into portal.sessions (token_sha256, account_id, csrf_token, expires_at, client_addr)"
        " values (%s, %s, %s, now() + %s, %s)",
        (_digest(token), account.account_id, secrets.token_urlsafe(32), settings.session_lifetime, client_addr))
    # Old sessions go when someone logs in: the table stays the size of the live ones.
    conn.execute("delete from portal.sessions where expires_at < now() - interval '1 day'"
                 " or revoked_at < now() - interval '1 day'")
    return token


def load_session(conn: psycopg.Connection, token: str | None, settings: PortalSettings) -> Session | None:
    """The live session of ``token`` (and mark it seen), or None if it is unknown, revoked or expired."""
    if not token or len(token) > 200:
        return None
    row = conn.execute(
        "select s.account_id, s.csrf_token, s.expires_at, now() - s.last_seen_at"
        " from portal.sessions s join portal.accounts a using (account_id)"
        " where s.token_sha256 = %s and s.revoked_at is null and a.disabled_at is null"
        " and s.expires_at > now() and s.last_seen_at > now() - %s",
        (_digest(token), settings.session_idle)).fetchone()
    if row is None:
        return None
    account_id, csrf_token, expires_at, idle = row
    if idle > _TOUCH_EVERY:
        conn.execute("update portal.sessions set last_seen_at = now() where token_sha256 = %s", (_digest(token),))
    account = get_account(conn, account_id)
    if account is None:
        return None
    return Session(token, account, csrf_token, expires_at)


def revoke_session(conn: psycopg.Connection, token: str) -> None:
    """End a session (logout)."""
    conn.execute("update portal.sessions set revoked_at = now() where token_sha256 = %s and revoked_at is null",
                 (_digest(token),))


def revoke_other_sessions(conn: psycopg.Connection, account_id: int, keep_token: str | None) -> None:
    """End every session of the account but ``keep_token``'s (after a password change)."""
    conn.execute("update portal.sessions set revoked_at = now() where account_id = %s and revoked_at is null"
                 " and token_sha256 <> %s", (account_id, _digest(keep_token or "")))
