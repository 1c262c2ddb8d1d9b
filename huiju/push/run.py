"""One push run for a target (compute what is due → batches → send), replays, the reconciliation report
and the 双公示 deadline alert; what the DAG tasks and ``huiju push`` call.

The target's credentials come in as a resolved Connection (:class:`huiju.channels.ConnectionInfo`):
the Airflow task resolves it with ``BaseHook``; the command line reads the same ``AIRFLOW_CONN_<ID>``
variable Airflow would (:func:`connection_from_environment`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import psycopg
from huiju_connectors.credit_push import CreditPlatform
from huiju_connectors.http_auth import BearerAuth, HmacAuth, HmacHeaders
from huiju_connectors.retry import RetryPolicy
from psycopg.rows import dict_row

from huiju.channels.connection import ConnectionInfo, base_url, secret
from huiju.monitoring.ledger import today as business_day
from huiju.notices import queue_notice, steward_recipients
from huiju.push.outbox import DueReport, compute_due
from huiju.push.sender import DrainReport, assign_batches, drain
from huiju.push.targets import PushEndpoint, Target, load_targets
from huiju.registry import Registry
from huiju.summary import render_table
from huiju.warehouse import connect
from huiju.workdays import CalendarGap, work_calendar

log = logging.getLogger(__name__)

REPORT_COLUMNS = ("target", "day", "due", "sent", "accepted", "rejected", "unknown", "late")


def connection_from_environment(conn_id: str) -> ConnectionInfo:
    """The Connection ``conn_id`` from ``AIRFLOW_CONN_<ID>`` (Airflow's JSON or URI form), for the command line."""
    value = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if not value:
        raise ValueError(f"no Connection {conn_id!r}: set AIRFLOW_CONN_{conn_id.upper()} (as Airflow reads it)")
    if value.lstrip().startswith("{"):
        data = json.loads(value)
        extra = data.get("extra") or {}
        return ConnectionInfo(conn_id=conn_id, host=data.get("host"), port=data.get("port"), login=data.get("login"),
                              password=data.get("password"), schema=data.get("schema"),
                              extra=json.loads(extra) if isinstance(extra, str) else dict(extra))
    parts = urlsplit(value)
    return ConnectionInfo(conn_id=conn_id, host=parts.hostname, port=parts.port,
                          login=unquote(parts.username) if parts.username else None,
                          password=unquote(parts.password) if parts.password else None,
                          schema=parts.path.lstrip("/") or None, extra={"scheme": "http" if parts.scheme == "http"
                                                                        else "https"})


def platform_for(target: PushEndpoint, connection: ConnectionInfo, **overrides: Any) -> CreditPlatform:
    """The connector for ``target``: its base URL and credentials from ``connection``, settings from its YAML."""
    url = base_url(connection, target.target)
    auth: httpx.Auth
    if target.auth == "bearer":
        auth = BearerAuth(secret(connection, "token", connection.password))
    else:
        auth = HmacAuth(secret(connection, "app_key", connection.login),
                        secret(connection, "app_secret", connection.password),
                        headers=HmacHeaders(**target.hmac_headers.model_dump()), algorithm=target.signature)
    options: dict[str, Any] = {"base_url": url, "auth": auth, "submit_path": target.submit_path,
                               "status_path": target.status_path, "idempotency_header": target.idempotency_header,
                               "timeout": target.timeout, "retry": RetryPolicy(attempts=target.attempts)}
    return CreditPlatform(**{**options, **overrides})


@dataclass
class PushReport:
    """One run at one target: what was queued and what the sending did."""

    due: DueReport
    sent: DrainReport
    batches_created: int


def push_target(conn: psycopg.Connection, registry: Registry, target: Target, platform: CreditPlatform, *,
                today: date | None = None) -> PushReport:
    """Compute what is due, cut it into batches and send them (and every open batch before them).

    The rows are cut into batches as they are queued (each written once); rows a replay left due, and any
    queued behind them, are cut by :func:`~huiju.push.sender.assign_batches`.
    """
    due = compute_due(conn, registry, target, today=today, batched=True)
    created = due.batches + len(assign_batches(conn, target))
    sent = drain(conn, target, platform)
    log.info("push %s: %d queued, %d batches created; %d sent, %d accepted, %d rejected, %d unknown%s",
             target.target, due.queued, created, sent.batches_sent, sent.accepted, sent.rejected, sent.unknown,
             f"; stopped: {sent.stopped}" if sent.stopped else "")
    return PushReport(due, sent, created)


def replay(conn: psycopg.Connection, target: Target, start: date, end: date, *, include_accepted: bool = False) -> int:
    """Queue again what was due at ``target`` between ``start`` and ``end`` (days queued, Asia/Shanghai).

    Only what the target holds no accepted receipt for (rejected, refused), unless ``include_accepted``;
    records still on their way (due, in an open batch, unknown) are left to their batch, which the next
    send settles with the same idempotency key. A record is queued again only from its latest row.
    Returns how many rows were queued; :func:`huiju.push.sender.drain` sends them.
    """
    states = ("rejected", "refused", "accepted") if include_accepted else ("rejected", "refused")
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"huiju.push:{target.target}",))
        cur = conn.execute(
            # The payload stays where it is (push_private.payloads, by content hash): the same bytes go again.
            "insert into ops.push_outbox (target, record_key, relation, action, content_hash, department,"
            " load_id, source_row_no, decision_date, deadline_date)"
            " select distinct on (o.record_key) o.target, o.record_key, o.relation, o.action,"
            " o.content_hash, o.department, o.load_id, o.source_row_no, o.decision_date, o.deadline_date"
            " from ops.push_outbox o where o.target = %s"
            " and (o.queued_at at time zone 'Asia/Shanghai')::date between %s and %s and o.state = any(%s)"
            # only the record's latest row: one queued since (sent or not) already speaks for it
            " and not exists (select 1 from ops.push_outbox n where n.target = o.target and n.record_key = o.record_key"
            "                 and n.outbox_id > o.outbox_id and n.state <> 'superseded')"
            " order by o.record_key, o.outbox_id desc", (target.target, start, end, list(states)))
        queued = cur.rowcount
    log.info("push %s: replay %s..%s queued %d records", target.target, start, end, queued)
    return queued


def reconciliation(conn: psycopg.Connection, *, target: str | None = None, start: date | None = None,
                   end: date | None = None, today: date | None = None) -> list[dict[str, Any]]:
    """Per target and day queued: due, sent, accepted, rejected, unknown, late (after the 7-working-day deadline).

    ``late``: settled after its deadline, or still not accepted or rejected with its deadline passed.
    """
    today = today or business_day()
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select target, (queued_at at time zone 'Asia/Shanghai')::date as day, count(*) as due,"
            " count(*) filter (where state in ('accepted', 'rejected', 'unknown', 'refused')"
            "                  or (state = 'batched' and exists (select 1 from ops.push_batches b"
            "                      where b.batch_id = o.batch_id and b.attempts > 0))) as sent,"
            " count(*) filter (where state = 'accepted') as accepted,"
            " count(*) filter (where state = 'rejected') as rejected,"
            " count(*) filter (where state = 'unknown') as unknown,"
            " count(*) filter (where deadline_date is not null and ("
            "     (settled_at is not null and (settled_at at time zone 'Asia/Shanghai')::date > deadline_date)"
            "     or (state in ('due', 'batched', 'unknown', 'refused') and deadline_date < %(today)s))) as late"
            " from ops.push_outbox o where state <> 'superseded'"
            " and (%(target)s::text is null or target = %(target)s)"
            " and (%(start)s::date is null or (queued_at at time zone 'Asia/Shanghai')::date >= %(start)s)"
            " and (%(end)s::date is null or (queued_at at time zone 'Asia/Shanghai')::date <= %(end)s)"
            " group by 1, 2 order by 1, 2",
            {"target": target, "start": start, "end": end, "today": today}).fetchall()


def queue_deadline_alerts(conn: psycopg.Connection, today: date) -> int:
    """Tell the stewards, a working day before, of records about to miss their 双公示 deadline; notices queued.

    A record is at risk when it is not yet accepted by some target and its deadline is the next working
    day (or today). One notice per target and day (its dedupe key), listing decision numbers, never names
    or ID numbers. Commits.
    """
    try:
        horizon = work_calendar().add_working_days(today, 1)
    except CalendarGap as gap:
        log.warning("push deadline alerts skipped: %s", gap)
        return 0
    queued = 0
    with conn.transaction():
        rows = conn.execute(
            "select target, array_agg(record_key order by deadline_date, record_key), min(deadline_date)"
            " from ops.push_outbox where state in ('due', 'batched', 'unknown', 'refused')"
            " and deadline_date between %s and %s and not late_alerted group by target order by target",
            (today, horizon)).fetchall()
        for target, keys, first in rows:
            listed = "、".join(keys[:20]) + (f" 等{len(keys)}条" if len(keys) > 20 else "")
            subject = f"【双公示临期】{target}：{len(keys)}条信用信息将于{first:%Y-%m-%d}超过7个工作日公示时限"
            body = (f"以下记录尚未被{target}确认接收，公示时限（决定之日起7个工作日）最早于{first:%Y-%m-%d}届满，"
                    f"请核查推送情况：\n{listed}\n\n（本邮件由汇聚平台自动发送）")
            if queue_notice(conn, dedupe_key=f"push_deadline:{target}:{today.isoformat()}", kind="push_deadline",
                            subject=subject, body=body, recipients=steward_recipients()) is not None:
                queued += 1
            conn.execute("update ops.push_outbox set late_alerted = true where target = %s and record_key = any(%s)"
                         " and state in ('due', 'batched', 'unknown', 'refused')", (target, keys))
    return queued


def render_reconciliation(rows: list[dict[str, Any]]) -> str:
    """The reconciliation report as a table (the summary's and ``huiju push report``'s)."""
    return render_table(list(REPORT_COLUMNS), [[str(row[c]) for c in REPORT_COLUMNS] for row in rows],
                        numeric=set(range(2, len(REPORT_COLUMNS))))



def run_push(registry: Registry, target_name: str, connection: ConnectionInfo, *, today: date | None = None,
             url: str | None = None) -> PushReport:
    """A scheduled push run: as the push component, compute, batch and send; then, as validation, send the
    rejections back to their departments and alert the stewards of deadlines about to pass."""
    from huiju.push.feedback import send_rejections  # why: loads openpyxl, needed only after the send
    today = today or business_day()  # the Asia/Shanghai day, whatever the machine's zone
    targets = load_targets(registry)
    target = targets[target_name]
    platform = platform_for(target, connection)
    try:
        with connect(url, role="push") as conn:
            report = push_target(conn, registry, target, platform, today=today)
    finally:
        platform.close()
    with connect(url, role="validation") as conn:
        send_rejections(conn, registry, targets)
        queue_deadline_alerts(conn, today)
    return report


def run_replay(registry: Registry, target_name: str, connection: ConnectionInfo, start: date, end: date, *,
               include_accepted: bool = False, url: str | None = None) -> tuple[int, DrainReport]:
    """Replay ``start``..``end`` at a target and send at once; (rows queued again, what the send did)."""
    if end < start:
        raise ValueError(f"replay: {end} is before {start}")
    target = load_targets(registry)[target_name]
    platform = platform_for(target, connection)
    try:
        with connect(url, role="push") as conn:
            queued = replay(conn, target, start, end, include_accepted=include_accepted)
            assign_batches(conn, target)
            sent = drain(conn, target, platform)
    finally:
        platform.close()
    return queued, sent
