"""共享方式 push (数据推送): a grant delivered to the requesting department on a schedule, once per period.

A request for a resource shared by push (``share_methods: [..., push]``) carries ``delivery``: ``push`` when its
department declared a receiving system (``config/sharing/receivers/<department>.yaml``), else ``export`` (a
file in its portal download area). Approving it approves that way too, and the grant's function is then
executable by the push component (migration 211), which delivers both ways.

Each period (the business day, Asia/Shanghai) :func:`run_share_deliveries` does, for every live delivered grant:

- **push** (:func:`push_grant`): :func:`queue_period` — in one transaction, under the grant's outbox lock: the
  grant's rows, read through its own function (exactly the approved fields of the approved rows, refused once
  the grant ended, a ``delivery_read`` row in the audit trail), become wire records (``<grant>:<period>:<n>``,
  values as :mod:`huiju.push.outbox` renders them), their payloads kept by content hash in
  ``push_private.payloads``, one ``ops.push_outbox`` row each under the outbox name ``share_grant_<id>``, and
  the period's row in ``sharing.deliveries``. Then the push machinery as it is:
  :func:`huiju.push.sender.assign_batches` (deterministic batch ids ``share_grant_<id>-0000000n``, idempotency
  keys from id and content) and :func:`huiju.push.sender.drain` (retries, 413 splits, status queries after a
  timeout, per-record receipts in ``ops.push_receipts``); an outage stops the drain, and the next run goes on
  from the same batch with the same key. Audited: ``push_queued`` and ``pushed`` (accepted, rejected, unknown);
- **export** (:func:`export_period`): the same rows as a CSV file (UTF-8 with BOM, so Excel shows the Chinese;
  cells that a spreadsheet would evaluate neutralised), kept in the archive by its sha256 and recorded in
  ``sharing.deliveries``; the requester downloads it from the request's page (huiju_portal; audited).
  Audited: ``exported``.

A period already in ``sharing.deliveries`` is never delivered again: a rerun, or the next hour's run, adds
nothing. Revocation and expiry stop deliveries at once: ``sharing.end_grant`` refuses the grant's batches not
yet sent (migration 211), its function is dropped (nothing can be read for it), only live grants are delivered,
and the portal serves a grant's files only while it is live.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from huiju_connectors.credit_push import CreditPlatform
from psycopg import sql
from psycopg.rows import dict_row

from huiju.archive import archive_bytes
from huiju.channels.connection import ConnectionInfo
from huiju.feedback import neutralise
from huiju.monitoring.ledger import today as business_day
from huiju.push.outbox import OUTBOX_COLUMNS, canonical_json, store_payloads, text_hash, wire_value
from huiju.push.run import platform_for
from huiju.push.sender import DrainReport, assign_batches, drain
from huiju.sharing import audit
from huiju.sharing.config import Receiver, load_receivers
from huiju.warehouse import connect

log = logging.getLogger(__name__)

#: Rows read from a grant's function per round trip, and queued per write.
CHUNK = 5000


@dataclass
class DeliveryReport:
    """One grant's delivery run: what was delivered for the period (None: delivered before), and how."""

    grant_id: int
    period: date
    department: str
    way: str  # push | export
    records: int | None = None
    sent: DrainReport | None = None  # push: what the sender did
    file: str | None = None  # export: the file's reference in the archive
    skipped: str | None = None  # why nothing was done (the department's receiver is gone from the config)

    def describe(self) -> str:
        """One line: the grant, the period, what was delivered and, for a push, what the receiver said."""
        head = f"grant {self.grant_id} → {self.department} ({self.way}, {self.period.isoformat()}): "
        if self.skipped:
            return head + f"skipped ({self.skipped})"
        if self.way == "export":
            return head + ("already exported" if self.records is None else f"{self.records} record(s) in {self.file}")
        sent = self.sent or DrainReport(outbox_name(self.grant_id))
        return (head + ("already queued" if self.records is None else f"{self.records} record(s) queued")
                + f"; {sent.batches_sent} batch(es) sent, {sent.accepted} accepted, {sent.rejected} rejected"
                + (f"; stopped: {sent.stopped}" if sent.stopped else ""))

    @property
    def stopped(self) -> str | None:
        """Why the send stopped early (the receiver unavailable through every retry), if it did."""
        return self.sent.stopped if self.sent else None


def outbox_name(grant_id: int) -> str:
    """The push outbox's name for a grant's deliveries (its batches' ids start with it)."""
    return f"share_grant_{grant_id}"


def live_delivered_grants(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """The live grants delivered each period (pushed or exported), with their request's resource and department."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select g.grant_id, g.request_id, g.view_name, g.fields, g.delivery, r.resource_id, r.requester_department"
            " from sharing.grants g join sharing.requests r using (request_id)"
            " where g.delivery is not null and g.ended_at is null and g.expires_at > now()"
            " order by g.grant_id").fetchall()


@contextmanager
def _period_once(conn: psycopg.Connection, grant: dict[str, Any], period: date) -> Iterator[bool]:
    """A transaction under the grant's outbox lock; yields False when ``period`` was delivered before."""
    with conn.transaction():
        # The lock assign_batches takes for this outbox name: no batch is cut from a half-queued period.
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"huiju.push:{outbox_name(grant['grant_id'])}",))
        yield conn.execute("select from sharing.deliveries where grant_id = %s and period = %s",
                           (grant["grant_id"], period)).fetchone() is None


def _grant_rows(conn: psycopg.Connection, grant: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The grant's rows through its own function (audited as ``delivery_read``), streamed."""
    query = sql.SQL("select * from granted.{}()").format(sql.Identifier(grant["view_name"] + "_rows"))
    with conn.cursor(name=f"share_delivery_{grant['grant_id']}", row_factory=dict_row) as cur:
        cur.itersize = CHUNK
        cur.execute(query)
        yield from cur


def queue_period(conn: psycopg.Connection, grant: dict[str, Any], period: date) -> int | None:
    """Queue the grant's rows for ``period`` into the push outbox (see the module docstring); commits.

    Returns how many records were queued, or None when the period was delivered before (nothing twice).
    """
    target = outbox_name(grant["grant_id"])
    with _period_once(conn, grant, period) as due:
        if not due:
            return None
        payloads: list[tuple[str, str]] = []
        outbox: list[tuple[Any, ...]] = []
        count = 0

        def flush() -> None:  # as compute_due writes its chunks: payloads, then the outbox rows by COPY
            store_payloads(conn, payloads)
            with conn.cursor().copy(sql.SQL("copy ops.push_outbox ({}) from stdin").format(
                    sql.SQL(", ").join(map(sql.Identifier, OUTBOX_COLUMNS)))) as copy:
                for values in outbox:
                    copy.write_row(values)
            payloads.clear()
            outbox.clear()

        for count, row in enumerate(_grant_rows(conn, grant), start=1):
            record_id = f"{grant['grant_id']}:{period.isoformat()}:{count:06d}"
            text = canonical_json({"record_id": record_id, "action": "upsert", "item_set": grant["resource_id"],
                                   "data": {column: wire_value(value) for column, value in row.items()}})
            digest = text_hash(text)
            payloads.append((digest, text))
            outbox.append((target, record_id, grant["view_name"], "upsert", digest, None, None, None, None, None))
            if len(outbox) >= CHUNK:
                flush()
        if outbox:
            flush()
        conn.execute("insert into sharing.deliveries (grant_id, period, way, target, records)"
                     " values (%s, %s, 'push', %s, %s)", (grant["grant_id"], period, target, count))
        audit.record(conn, "push_queued", "system", request_id=grant["request_id"], grant_id=grant["grant_id"],
                     detail={"period": period.isoformat(), "records": count, "to": grant["requester_department"],
                             "outbox": target})
    return count


def export_file_name(grant: dict[str, Any], period: date) -> str:
    """The name the requester downloads a period's file under."""
    return f"{grant['resource_id']}_grant{grant['grant_id']}_{period.isoformat()}.csv"


def export_period(conn: psycopg.Connection, grant: dict[str, Any], period: date) -> DeliveryReport:
    """Export the grant's rows for ``period`` as a CSV file in the archive, once (see the module docstring); commits."""
    report = DeliveryReport(grant["grant_id"], period, grant["requester_department"], "export")
    with _period_once(conn, grant, period) as due:
        if not due:
            return report
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(grant["fields"])
        count = 0
        for row in _grant_rows(conn, grant):
            writer.writerow(["" if value is None else neutralise(wire_value(value)) for value in row.values()])
            count += 1
        content = ("\ufeff" + text.getvalue()).encode("utf-8")
        digest = hashlib.sha256(content).hexdigest()
        report.file = archive_bytes(content, digest)
        conn.execute("insert into sharing.deliveries (grant_id, period, way, file_ref, file_sha256, records)"
                     " values (%s, %s, 'export', %s, %s, %s)", (grant["grant_id"], period, report.file, digest, count))
        audit.record(conn, "exported", "system", request_id=grant["request_id"], grant_id=grant["grant_id"],
                     detail={"period": period.isoformat(), "records": count, "to": grant["requester_department"],
                             "file_sha256": digest, "name": export_file_name(grant, period)})
    report.records = count
    return report


def push_grant(conn: psycopg.Connection, grant: dict[str, Any], receiver: Receiver, platform: CreditPlatform,
               period: date) -> DeliveryReport:
    """Queue ``period`` for a live push grant (once), cut its batches and send every open one; audited."""
    endpoint = receiver.for_grant(grant["grant_id"])
    report = DeliveryReport(grant["grant_id"], period, receiver.department, "push")
    report.records = queue_period(conn, grant, period)
    assign_batches(conn, endpoint)
    report.sent = sent = drain(conn, endpoint, platform)
    if sent.batches_sent or sent.reconciled or sent.refused or sent.stopped:
        with conn.transaction():
            audit.record(conn, "pushed", "system", request_id=grant["request_id"], grant_id=grant["grant_id"],
                         detail={"period": period.isoformat(), "to": receiver.department,
                                 "batches": sent.batches_sent + sent.reconciled, "accepted": sent.accepted,
                                 "rejected": sent.rejected, "unknown": sent.unknown, "refused": sent.refused,
                                 "stopped": sent.stopped})
    log.info("share push grant %s (%s) for %s: %s queued; %d batches sent, %d accepted, %d rejected%s",
             grant["grant_id"], receiver.department, period, "nothing" if report.records is None else report.records,
             sent.batches_sent, sent.accepted, sent.rejected, f"; stopped: {sent.stopped}" if sent.stopped else "")
    return report


def run_share_deliveries(resolve: Callable[[str], ConnectionInfo], *, period: date | None = None,
                         url: str | None = None, receivers: dict[str, Receiver] | None = None,
                         **platform_options: Any) -> list[DeliveryReport]:
    """Deliver every live delivered grant for ``period`` (default: today, Asia/Shanghai), as the push component.

    ``resolve`` turns a receiver's Connection id into its settings (the Airflow task's ``BaseHook``, the
    command line's environment); ``platform_options`` go to the connector (a test's ``sleep``).
    """
    period = period or business_day()
    receivers = load_receivers() if receivers is None else receivers
    reports = []
    with connect(url, role="push") as conn:
        for grant in live_delivered_grants(conn):
            conn.commit()
            department = grant["requester_department"]
            if grant["delivery"] == "export":
                reports.append(export_period(conn, grant, period))
                continue
            receiver = receivers.get(department)
            if receiver is None:
                log.warning("share push grant %s: department %s no longer declares a receiver "
                            "(config/sharing/receivers/)", grant["grant_id"], department)
                reports.append(DeliveryReport(grant["grant_id"], period, department, "push",
                                              skipped="no receiver declared"))
                continue
            platform = platform_for(receiver.for_grant(grant["grant_id"]), resolve(receiver.connection),
                                    **platform_options)
            try:
                reports.append(push_grant(conn, grant, receiver, platform, period))
            finally:
                platform.close()
    return reports
