"""Login throttling: too many failed logins lock the account name, and the client address, for a while.

Failures are rows in ``portal.login_failures``, so a restart of the portal does not forget
them. An account name (whether or not it exists, so a locked answer tells nothing about which
names exist) is locked once ``max_failures_per_account`` failures fall within ``login_window``;
a client address once ``max_failures_per_client`` do (one machine trying many names). While
locked, passwords are not even checked. A successful login clears its account name's failures;
a steward can clear them too (解锁).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from huiju_portal.config import PortalSettings


@dataclass(frozen=True)
class Lockout:
    """Why a login is refused without checking the password, and until when."""

    scope: str  # account | client
    until: datetime


def _locked_until(conn: psycopg.Connection, column: str, value: str, limit: int,
                  settings: PortalSettings) -> datetime | None:
    # The limit-th most recent failure in the window: the lock lasts until it leaves the window.
    row = conn.execute(
        f"select failed_at + %s from portal.login_failures where {column} = %s and failed_at > now() - %s"
        " order by failed_at desc offset %s limit 1",
        (settings.login_window, value, settings.login_window, limit - 1)).fetchone()
    return row[0] if row else None


def lockout(conn: psycopg.Connection, username: str, client_addr: str, settings: PortalSettings) -> Lockout | None:
    """The lock on this login attempt, if any (the client's first: it is the wider one)."""
    until = _locked_until(conn, "client_addr", client_addr, settings.max_failures_per_client, settings)
    if until is not None:
        return Lockout("client", until)
    until = _locked_until(conn, "username", username.strip().lower(), settings.max_failures_per_account, settings)
    return Lockout("account", until) if until is not None else None


def record_failure(conn: psycopg.Connection, username: str, client_addr: str) -> None:
    """Count a failed login against the account name and the client address."""
    conn.execute("insert into portal.login_failures (username, client_addr) values (%s, %s)",
                 (username.strip().lower()[:100], client_addr))


def clear_failures(conn: psycopg.Connection, username: str) -> None:
    """Forget an account name's failures (a successful login, or a steward unlocking it)."""
    conn.execute("delete from portal.login_failures where username = %s", (username.strip().lower(),))
