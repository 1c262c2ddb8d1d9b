"""共享方式 push: a grant delivered to the requesting department's own system, once per period.

A request for a resource shared by push (``share_methods: [..., push]``) from a department that declared a
receiving system (``config/sharing/receivers/<department>.yaml``) carries ``push_to``; approving it approves
that way too, and the grant's function is then executable by the push component (migration 211).

Each period (the business day, Asia/Shanghai) :func:`deliver_grant` does, for every live push grant:

1. **queue** (:func:`queue_period`, one transaction, under the grant's outbox lock): the grant's rows — read
   through its own function, so exactly the approved fields of the approved rows, refused once the grant
   ended, and a ``push_read`` row in the audit trail — become wire records (``<grant>:<period>:<n>``, the
   values as :mod:`huiju.push.outbox` renders them), their payloads kept by content hash in
   ``push_private.payloads``, one ``ops.push_outbox`` row each under the outbox name ``share_grant_<id>``,
   and the period's row in ``sharing.deliveries``. A period already there is never queued again: a rerun,
   or the next hour's run, queues nothing;
2. **send** with the push machinery as it is: :func:`huiju.push.sender.assign_batches` (deterministic batch
   ids ``share_grant_<id>-0000000n``, idempotency keys from id and content) and :func:`huiju.push.sender.drain`
   (retries, 413 splits, status queries after a timeout, per-record receipts in ``ops.push_receipts``); an
   outage stops the drain and the next run goes on from the same batch with the same key;
3. **audit**: ``push_queued`` (period, records) and ``pushed`` (batches, accepted, rejected, unknown).

Revocation and expiry stop deliveries at once: ``sharing.end_grant`` refuses the grant's batches not yet sent
(migration 211), the grant's function is dropped (nothing can be read for it), and only live grants are
delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from huiju_connectors.credit_push import CreditPlatform
from psycopg import sql
from psycopg.rows import dict_row

from huiju.channels.connection import ConnectionInfo
from huiju.monitoring.ledger import today as business_day
from huiju.push.outbox import OUTBOX_COLUMNS, canonical_json, store_payloads, text_hash, wire_value
from huiju.push.run import platform_for
from huiju.push.sender import DrainReport, assign_batches, drain
from huiju.sharing import audit
from huiju.sharing.config import Receiver, load_receivers
from huiju.warehouse import connect

log = logging.getLogger(__name__)

#: Rows read from a grant's function per round trip.
CHUNK = 5000


@dataclass
class DeliveryReport:
    """One grant's delivery run: what was queued for the period (None: already queued before) and what was sent."""

    grant_id: int
    period: date
    receiver: str
    queued: int | None = None
    sent: DrainReport | None = None
    skipped: str | None = None  # why nothing was done (no receiver declared any more)

    def describe(self) -> str:
        """One line: the grant, the period, what was queued and what the receiver said."""
        head = f"grant {self.grant_id} → {self.receiver} ({self.period.isoformat()}): "
        if self.skipped:
            return head + f"skipped ({self.skipped})"
        queued = "already queued" if self.queued is None else f"{self.queued} record(s) queued"
        sent = self.sent or DrainReport(outbox_name(self.grant_id))
        return (head + f"{queued}; {sent.batches_sent} batch(es) sent, {sent.accepted} accepted, "
                f"{sent.rejected} rejected" + (f"; stopped: {sent.stopped}" if sent.stopped else ""))

    @property
    def stopped(self) -> str | None:
        """Why the send stopped early (the receiver unavailable through every retry), if it did."""
        return self.sent.stopped if self.sent else None


def outbox_name(grant_id: int) -> str:
    """The push outbox's name for a grant's deliveries (its batches' ids start with it)."""
    return f"share_grant_{grant_id}"


def live_push_grants(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """The live grants delivered by push, with their request's resource and department, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select g.grant_id, g.request_id, g.view_name, g.fields, g.push_to, r.resource_id, r.requester_department"
            " from sharing.grants g join sharing.requests r using (request_id)"
            " where g.push_to is not null and g.ended_at is null and g.expires_at > now()"
            " order by g.grant_id").fetchall()


def queue_period(conn: psycopg.Connection, grant: dict[str, Any], period: date) -> int | None:
    """Queue the grant's rows for ``period`` into the push outbox (see the module docstring); commits.

    Returns how many records were queued, or None when the period was queued before (nothing is queued twice).
    """
    target = outbox_name(grant["grant_id"])
    with conn.transaction():
        # The lock assign_batches takes for this outbox name: no batch is cut from a half-queued period.
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"huiju.push:{target}",))
        if conn.execute("select from sharing.deliveries where grant_id = %s and period = %s",
                        (grant["grant_id"], period)).fetchone() is not None:
            return None
        payloads: list[tuple[str, str]] = []
        outbox: list[tuple[Any, ...]] = []
        query = sql.SQL("select * from granted.{}()").format(sql.Identifier(grant["view_name"] + "_rows"))
        with conn.cursor(name=f"share_push_{grant['grant_id']}", row_factory=dict_row) as cur:
            cur.itersize = CHUNK
            cur.execute(query)
            for number, row in enumerate(cur, start=1):
                record_id = f"{grant['grant_id']}:{period.isoformat()}:{number:06d}"
                text = canonical_json({"record_id": record_id, "action": "upsert", "item_set": grant["resource_id"],
                                       "data": {column: wire_value(value) for column, value in row.items()}})
                digest = text_hash(text)
                payloads.append((digest, text))
                outbox.append((target, record_id, grant["view_name"], "upsert", digest, None, None, None, None,
                               None))
        if payloads:
            store_payloads(conn, payloads)
            with conn.cursor().copy(sql.SQL("copy ops.push_outbox ({}) from stdin").format(
                    sql.SQL(", ").join(map(sql.Identifier, OUTBOX_COLUMNS)))) as copy:
                for values in outbox:
                    copy.write_row(values)
        conn.execute("insert into sharing.deliveries (grant_id, period, target, records) values (%s, %s, %s, %s)",
                     (grant["grant_id"], period, target, len(outbox)))
        audit.record(conn, "push_queued", "system", request_id=grant["request_id"], grant_id=grant["grant_id"],
                     detail={"period": period.isoformat(), "records": len(outbox), "to": grant["push_to"],
                             "outbox": target})
    return len(outbox)


def deliver_grant(conn: psycopg.Connection, grant: dict[str, Any], receiver: Receiver, platform: CreditPlatform,
                  period: date) -> DeliveryReport:
    """Queue ``period`` for a live push grant (once), cut its batches and send every open one; audited."""
    endpoint = receiver.for_grant(grant["grant_id"])
    report = DeliveryReport(grant["grant_id"], period, receiver.department)
    report.queued = queue_period(conn, grant, period)
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
             grant["grant_id"], receiver.department, period, "nothing" if report.queued is None else report.queued,
             sent.batches_sent, sent.accepted, sent.rejected, f"; stopped: {sent.stopped}" if sent.stopped else "")
    return report


def run_share_pushes(resolve: Callable[[str], ConnectionInfo], *, period: date | None = None,
                     url: str | None = None, receivers: dict[str, Receiver] | None = None,
                     **platform_options: Any) -> list[DeliveryReport]:
    """Deliver every live push grant for ``period`` (default: today, Asia/Shanghai), as the push component.

    ``resolve`` turns a receiver's Connection id into its settings (the Airflow task's ``BaseHook``, the
    command line's environment); ``platform_options`` go to the connector (a test's ``sleep``).
    """
    period = period or business_day()
    receivers = load_receivers() if receivers is None else receivers
    reports = []
    with connect(url, role="push") as conn:
        for grant in live_push_grants(conn):
            conn.commit()
            receiver = receivers.get(grant["push_to"])
            if receiver is None:
                log.warning("share push grant %s: department %s no longer declares a receiver "
                            "(config/sharing/receivers/)", grant["grant_id"], grant["push_to"])
                reports.append(DeliveryReport(grant["grant_id"], period, grant["push_to"],
                                              skipped="no receiver declared"))
                continue
            platform = platform_for(receiver.for_grant(grant["grant_id"]), resolve(receiver.connection),
                                    **platform_options)
            try:
                reports.append(deliver_grant(conn, grant, receiver, platform, period))
            finally:
                platform.close()
    return reports
