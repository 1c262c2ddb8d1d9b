"""Grants (共享授权): an approved request provisioned as a database grant and an API token, until it ends.

:func:`provision` creates the grant (``sharing.grants``) and has the database build its access
(``sharing.provision_grant``, huiju/sql/210_sharing.sql, run as the owner): a login role of the requester's
own, and ``granted.grant_<id>``, a view of the approved columns of the approved rows, readable by that role
only; every read through it is in the audit trail. A grant of a resource shared by push (``delivery``) is
also delivered to the requester each period (:mod:`huiju.sharing.delivery`). The requester
gets the role's password and the API token from :func:`issue_credentials` (shown once; asking again
replaces both). :func:`end_grant` (revoked) and
:func:`expire_grants` (expired) drop the view, the role and its sessions at once, and clear the token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from huiju.credentials import scram_verifier
from huiju.sharing import audit


@dataclass(frozen=True)
class GrantCredentials:
    """What the requester connects with: the database role and password, the view, the API token."""

    grant_id: int
    role_name: str
    password: str
    view: str  # granted.grant_<id>
    token: str
    expires_at: datetime


def token_digest(token: str) -> str:
    """The sha256 an API token is kept as (the token itself is never stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def provision(conn: psycopg.Connection, request: dict[str, Any], actor: str) -> int:
    """Provision the approved ``request`` (a row of sharing.requests): grant row, role, view; the grant id.

    The role's password is random and told to nobody until the requester asks (:func:`issue_credentials`).
    """
    grant_id = int(conn.execute("select nextval('sharing.grants_grant_id_seq')").fetchone()[0])
    role_name = f"share_grant_{grant_id}_{secrets.token_hex(4)}"
    conn.execute(
        "insert into sharing.grants (grant_id, request_id, role_name, view_name, relation, fields, row_scope,"
        " expires_at, delivery) values (%s, %s, %s, %s, %s, %s, %s, now() + make_interval(days => %s), %s)",
        (grant_id, request["request_id"], role_name, f"grant_{grant_id}", request["relation"], request["fields"],
         Jsonb(request["row_scope"]), request["duration_days"], request.get("delivery")))
    conn.execute("select sharing.provision_grant(%s, %s)", (grant_id, scram_verifier(secrets.token_urlsafe(32))))
    detail = {"view": f"granted.grant_{grant_id}", "role": role_name, "fields": list(request["fields"]),
              "row_scope": request["row_scope"]}
    if request.get("delivery"):
        detail["delivery"] = request["delivery"]  # pushed or exported each period (huiju.sharing.delivery)
    audit.record(conn, "provisioned", actor, request_id=request["request_id"], grant_id=grant_id, detail=detail)
    return grant_id


def issue_credentials(conn: psycopg.Connection, grant_id: int, actor: str) -> GrantCredentials:
    """New credentials for a live grant (the old password and token stop working): shown to the requester once."""
    password, token = secrets.token_urlsafe(24), "hj_" + secrets.token_urlsafe(32)
    conn.execute("select sharing.set_grant_password(%s, %s)", (grant_id, scram_verifier(password)))
    row = conn.execute("update sharing.grants set token_sha256 = %s where grant_id = %s and ended_at is null"
                       " returning role_name, view_name, expires_at, request_id",
                       (token_digest(token), grant_id)).fetchone()
    audit.record(conn, "credentials_issued", actor, request_id=row[3], grant_id=grant_id)
    return GrantCredentials(grant_id=grant_id, role_name=row[0], password=password, view=f"granted.{row[1]}",
                            token=token, expires_at=row[2])


def end_grant(conn: psycopg.Connection, grant_id: int, *, ended_as: str, actor: str, reason: str) -> None:
    """End a grant (``revoked`` or ``expired``): its view, role, sessions and token go at once; audited."""
    request_id = conn.execute("select request_id from sharing.grants where grant_id = %s", (grant_id,)).fetchone()
    conn.execute("select sharing.end_grant(%s, %s, %s, %s)", (grant_id, ended_as, actor, reason))
    audit.record(conn, ended_as, actor, request_id=request_id[0] if request_id else None, grant_id=grant_id,
                 detail={"reason": reason})


def expire_grants(conn: psycopg.Connection, now: datetime | None = None, actor: str = "system") -> list[int]:
    """End every live grant whose term is over (共享期限届满); the grant ids ended."""
    due = [row[0] for row in conn.execute(
        "select grant_id from sharing.grants where ended_at is null and expires_at <= coalesce(%s, now())"
        " order by grant_id", (now,))]
    for grant_id in due:
        end_grant(conn, grant_id, ended_as="expired", actor=actor, reason="共享期限届满")
    return due


def grants_of(conn: psycopg.Connection, *, department: str | None = None) -> list[dict[str, Any]]:
    """Grants with their request (a requesting department's, or all), newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select g.*, r.resource_id, r.requester_department, r.deciding_department"
            " from sharing.grants g join sharing.requests r using (request_id)"
            " where %(department)s::text is null or r.requester_department = %(department)s"
            " order by g.grant_id desc", {"department": department}).fetchall()


def live_grant_for_token(conn: psycopg.Connection, token: str) -> dict[str, Any] | None:
    """The live grant an API token belongs to, or None (unknown, revoked or expired: refused at once)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("select g.*, r.requester_department, r.resource_id from sharing.grants g"
                           " join sharing.requests r"
                           " using (request_id) where g.token_sha256 = %s and g.ended_at is null"
                           " and g.expires_at > now()", (token_digest(token),)).fetchone()




def admit_call(conn: psycopg.Connection, token: str, per_minute: int) -> float:
    """Count one data service API call of ``token``; 0 when it may go ahead, else the seconds until it may.

    The count is in the warehouse (``sharing.api_calls``, per token digest and minute), so the limit holds for
    every portal process together. A sliding window: this minute's calls plus the last minute's, weighted by
    the part of it still within the last 60 seconds, may not exceed ``per_minute``. A refused call is not
    counted. The caller commits soon after: the counter's row stays locked until it does.
    """
    digest = token_digest(token)
    current, previous, elapsed = conn.execute(
        "with counted as (insert into sharing.api_calls as c (token_sha256, window_start, calls)"
        " values (%(token)s, date_trunc('minute', now()), 1) on conflict (token_sha256, window_start)"
        " do update set calls = c.calls + 1 returning calls, window_start)"
        " select counted.calls, coalesce(p.calls, 0), extract(epoch from now() - counted.window_start)::float8"
        " from counted left join sharing.api_calls p on p.token_sha256 = %(token)s"
        " and p.window_start = counted.window_start - interval '1 minute'", {"token": digest}).fetchone()
    if previous * (60 - elapsed) / 60 + current <= per_minute:
        return 0.0
    conn.execute("update sharing.api_calls set calls = calls - 1 where token_sha256 = %s"
                 " and window_start = date_trunc('minute', now())", (digest,))
    if current > per_minute:  # this minute alone is full: until it ends
        return 60 - elapsed
    # Until enough of the last minute has left the window for the call to fit: previous * (60 - t) / 60 + current
    # <= per_minute (this minute's count back to current when it comes again).
    return max(0.001, 60 * (1 - (per_minute - current) / previous) - elapsed)


def forget_old_calls(conn: psycopg.Connection) -> int:
    """Drop API call counters no window reads any more (older than two minutes); how many."""
    return conn.execute("delete from sharing.api_calls where window_start < date_trunc('minute', now())"
                        " - interval '1 minute'").rowcount


def read_page(conn: psycopg.Connection, grant: dict[str, Any], offset: int, limit: int) -> list[dict[str, Any]]:
    """One page of a live grant's rows (its approved fields and rows), read as the sharing component for the API.

    The grant's own function serves it, so the API reads exactly what the database grant does, is refused the
    same way once the grant ends, and leaves its ``api_read`` row in the audit trail.
    """
    query = sql.SQL("select * from granted.{}(%s, %s)").format(sql.Identifier(grant["view_name"] + "_rows"))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (offset, limit)).fetchall()
