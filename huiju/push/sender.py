"""Sending the outbox to a target in batches, with receipts per record, exactly once at the platform.

**Batches.** :func:`assign_batches` cuts the target's ``due`` rows, in outbox order, into batches of
``batch_size``: batch ``n`` of target ``t`` is ``t-0000000n`` and its idempotency key is derived from the
batch id and its records' content hashes, so every send of it — a retry after a timeout, the next run
after a crash between the platform's 200 and our commit, a replay — carries the same key.

**Payloads** are read from ``push_private.payloads`` (only the push role reads it; they may hold an ID
number in clear) by the content hash each outbox row carries, and verified against it before they are
sent (:func:`wire_payload`): every send of a batch carries the same bytes.

**Sending** (:func:`drain`): batches go in order. Before a request the batch is marked ``sending`` and
committed; the receipts and the batch's ``done`` are committed together afterwards. A batch found
``sending`` (we died, or never got an answer) is first asked about by batch id (status query): if
the platform has it, its receipts are recorded and nothing is sent again; if not, it is sent again
with the same key. Each record's receipt is kept (``ops.push_receipts``): ``accepted``, ``rejected``
with the platform's reason, or ``unknown`` (a receipt that could not be read), which is settled by a
status query, never assumed delivered. HTTP 413 splits a batch into halves (``<id>.1``, ``<id>.2``,
deterministic by outbox order), again until it fits; another 4xx refuses the batch (final; its rows
``refused``); when the platform stays unavailable through every retry (5xx, 429, timeouts) the
drain stops there and the next run starts again from that batch, so an outage drains in order.
One request is on its way at a time; while the platform works on it the next batch's rows are read
(only read: a batch's receipts are committed before the next one is marked ``sending`` or sent).
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import psycopg
from huiju_connectors.credit_push import (
    BatchRefused,
    CreditPlatform,
    PayloadTooLarge,
    PlatformUnavailable,
    PushError,
    Receipts,
)
from psycopg.rows import dict_row

from huiju.masking import mask_text
from huiju.push.outbox import batch_id_of, canonical_json, copy_batches, idempotency_key, text_hash
from huiju.push.targets import PushEndpoint

log = logging.getLogger(__name__)


@dataclass
class DrainReport:
    """What one :func:`drain` run did at a target."""

    target: str
    batches_sent: int = 0
    reconciled: int = 0  # batches settled by a status query instead of a send
    split: int = 0
    refused: int = 0
    accepted: int = 0
    rejected: int = 0
    unknown: int = 0
    stopped: str | None = None  # why the drain stopped early (the platform unavailable)
    errors: list[str] = field(default_factory=list)


def assign_batches(conn: psycopg.Connection, target: PushEndpoint) -> list[str]:
    """Cut the target's due outbox rows into new batches (in outbox order); their ids. Commits.

    Written in bulk: the batches by COPY, each due row's batch by one update from a COPY'd table.
    """
    created: list[str] = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"huiju.push:{target.target}",))
        due = conn.execute("select outbox_id, content_hash from ops.push_outbox where target = %s"
                           " and batch_id is null and state = 'due' order by outbox_id", (target.target,)).fetchall()
        if not due:
            return created
        (last,) = conn.execute("select coalesce(max(batch_no), 0) from ops.push_batches where target = %s",
                               (target.target,)).fetchone() or (0,)
        batches, members = [], []
        for start in range(0, len(due), target.batch_size):
            chunk = due[start:start + target.batch_size]
            last += 1
            batch_id = batch_id_of(target.target, last)
            batches.append((batch_id, target.target, last, None, idempotency_key(batch_id, [r[1] for r in chunk]),
                            len(chunk)))
            members += [(outbox_id, batch_id) for outbox_id, _ in chunk]
            created.append(batch_id)
        _write_batches(conn, batches, members)
    return created


def _write_batches(conn: psycopg.Connection, batches: Sequence[tuple[Any, ...]],
                   members: Sequence[tuple[int, str]]) -> None:
    """New batches ``(batch_id, target, batch_no, parent, key, records)`` and their rows ``(outbox_id, batch_id)``."""
    copy_batches(conn, batches)
    conn.execute("create temp table if not exists push_members_in (outbox_id bigint, batch_id text) on commit drop")
    conn.execute("truncate push_members_in")
    with conn.cursor().copy("copy push_members_in from stdin") as copy:
        for row in members:
            copy.write_row(row)
    conn.execute("analyze push_members_in")  # its size, so a day's few rows are found by key, not by a scan
    conn.execute("update ops.push_outbox o set batch_id = m.batch_id, state = 'batched' from push_members_in m"
                 " where o.outbox_id = m.outbox_id")


def _split(conn: psycopg.Connection, batch: dict[str, Any]) -> list[str]:
    """Halve a batch the platform found too large (deterministic: by outbox order); the halves' ids."""
    rows = conn.execute("select outbox_id, content_hash from ops.push_outbox where batch_id = %s order by outbox_id",
                        (batch["batch_id"],)).fetchall()
    if len(rows) < 2:
        raise PayloadTooLarge(f"{batch['batch_id']}: one record is larger than the platform accepts", 413)
    middle = (len(rows) + 1) // 2
    halves, batches, members = [], [], []
    for number, part in ((1, rows[:middle]), (2, rows[middle:])):
        child = f"{batch['batch_id']}.{number}"
        batches.append((child, batch["target"], batch["batch_no"], batch["batch_id"],
                        idempotency_key(child, [r[1] for r in part]), len(part)))
        members += [(outbox_id, child) for outbox_id, _ in part]
        halves.append(child)
    _write_batches(conn, batches, members)
    conn.execute("update ops.push_batches set state = 'split', done_at = now() where batch_id = %s",
                 (batch["batch_id"],))
    return halves


def _open_batches(conn: psycopg.Connection, target: str) -> list[dict[str, Any]]:
    """The target's open batches, in sending order. Read once for a run of sends rather than once per batch: the
    open batches' index also holds the entries of batches since settled until vacuum comes round."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("select batch_id, target, batch_no, idempotency_key, state from ops.push_batches"
                           " where target = %s and state in ('pending', 'sending') order by batch_no, batch_id",
                           (target,)).fetchall()


class _Ahead(NamedTuple):
    """The next open batch and its rows (:func:`_records`), read while the one before it was on its way."""

    batch: dict[str, Any]
    records: list[tuple[str, str]]


class PayloadMismatch(RuntimeError):
    """A stored payload is missing or no longer matches its content hash: never sent (the batch stays open)."""


def wire_payload(record_key: str, digest: str, stored: str | None) -> str:
    """The bytes to send for one outbox row: the stored canonical JSON, verified against its content hash.

    A payload moved from ``ops`` by migration 181 is in jsonb's key order: it is re-rendered canonically
    and sent only when that matches the hash (the same content the batch's idempotency key was made from).
    """
    if stored is None:
        raise PayloadMismatch(f"{record_key}: its payload {digest[:12]}… is not in push_private.payloads")
    if text_hash(stored) == digest:
        return stored
    rendered = canonical_json(json.loads(stored))
    if text_hash(rendered) != digest:
        raise PayloadMismatch(f"{record_key}: the stored payload does not match its content hash {digest[:12]}…")
    return rendered


def _records(conn: psycopg.Connection, batch_id: str) -> list[tuple[str, str]]:
    """A batch's rows in outbox order: (record id, the payload's bytes as sent).

    The warehouse checks each stored payload against its hash; only one that does not match (or is missing)
    goes through :func:`wire_payload`, which re-renders it or refuses it.
    """
    return [(record_key, payload if verified else wire_payload(record_key, digest, payload))
            for record_key, digest, payload, verified in conn.execute(
                "select o.record_key, o.content_hash, p.payload,"
                " encode(sha256(convert_to(p.payload, 'UTF8')), 'hex') is not distinct from o.content_hash"
                " from ops.push_outbox o left join push_private.payloads p on p.content_hash = o.content_hash"
                " where o.batch_id = %s order by o.outbox_id", (batch_id,))]


#: Outbox states of a row still waiting for its receipt.
OPEN_STATES = ("batched", "unknown")


def _relaxed_commit(conn: psycopg.Connection) -> None:
    """The sender's bookkeeping commits without waiting for the WAL flush (``synchronous_commit = off``).

    Safe for exactly-once: a ``sending`` mark lost in a crash leaves the batch ``pending``, and its resend
    carries the same idempotency key, which the platform answers with the receipts it keeps; receipts
    lost leave it ``sending``, settled by the status query. Nothing is ever assumed delivered.
    """
    conn.execute("set local synchronous_commit = off")


def record_receipts(conn: psycopg.Connection, batch: dict[str, Any], receipts: Receipts, via: str,
                    report: DrainReport) -> bool:
    """Keep each open record's receipt and its outbox state; the batch is ``done`` when none is unknown. Commits.

    A record already accepted or rejected keeps that outcome (a status query never unsettles it): only the
    batch's open rows get a receipt. Set-based, whatever the batch's size: the receipts are written from the
    outbox rows themselves, each with its outcome from the few the platform did not accept (when the receipt
    was read whole; else from every outcome it gave, the rest unknown), and the rows settled in the same
    statement. Returns True when the batch is settled.
    """
    if receipts.malformed is None:  # every record has its outcome: only those not accepted need saying
        told = [(key, outcome, reason) for key, (outcome, reason) in receipts.outcomes.items() if outcome != "accepted"]
        otherwise: tuple[str, str | None] = ("accepted", None)
    else:
        told = [(key, outcome, reason) for key, (outcome, reason) in receipts.outcomes.items()]
        otherwise = ("unknown", mask_text(receipts.malformed))
    keys, outcomes, reasons = [t[0] for t in told], [t[1] for t in told], [mask_text(t[2]) if t[2] else None
                                                                          for t in told]
    # One round trip (a pipeline: begin, the statement, commit), the batch's state set in the same statement.
    with conn.pipeline(), conn.transaction():
        _relaxed_commit(conn)
        counted = conn.execute(
            "with receipts as (insert into ops.push_receipts (batch_id, outbox_id, target, record_key, outcome,"
            " reason, via) select o.batch_id, o.outbox_id, o.target, o.record_key, coalesce(r.outcome, %(outcome)s),"
            " case when r.outcome is null then %(reason)s else r.reason end, %(via)s from ops.push_outbox o"
            " left join unnest(%(keys)s::text[], %(outcomes)s::text[], %(reasons)s::text[])"
            " as r (record_key, outcome, reason) on r.record_key = o.record_key"
            " where o.batch_id = %(batch)s and o.state = any(%(open)s) returning outbox_id, outcome, reason),"
            " settled as (update ops.push_outbox o set state = r.outcome, reason = r.reason,"
            " settled_at = case when r.outcome <> 'unknown' then now() end from receipts r"
            " where o.batch_id = %(batch)s and o.outbox_id = r.outbox_id),"
            " counts as (select count(*) filter (where outcome = 'accepted') as accepted,"
            " count(*) filter (where outcome = 'rejected') as rejected,"
            " count(*) filter (where outcome = 'unknown') as unknown from receipts),"
            " batch as (update ops.push_batches b set state = case when c.unknown = 0 then 'done' else 'sending' end,"
            " done_at = case when c.unknown = 0 then now() end, last_error = %(malformed)s from counts c"
            " where b.batch_id = %(batch)s)"
            " select accepted, rejected, unknown from counts",
            {"outcome": otherwise[0], "reason": otherwise[1], "via": via, "keys": keys, "outcomes": outcomes,
             "reasons": reasons, "batch": batch["batch_id"], "open": list(OPEN_STATES),
             "malformed": receipts.malformed})
    accepted, rejected, unknown = counted.fetchone() or (0, 0, 0)
    settled = unknown == 0
    report.accepted += accepted
    report.rejected += rejected
    report.unknown += unknown
    return settled


def _mark_sending(conn: psycopg.Connection, batch_id: str) -> None:
    with conn.pipeline(), conn.transaction():  # one round trip
        _relaxed_commit(conn)
        conn.execute("update ops.push_batches set state = 'sending', attempts = attempts + 1, sent_at = now()"
                     " where batch_id = %s", (batch_id,))


def _refuse(conn: psycopg.Connection, batch_id: str, error: PushError) -> None:
    with conn.transaction():
        conn.execute("update ops.push_batches set state = 'refused', last_error = %s, done_at = now()"
                     " where batch_id = %s", (str(error), batch_id))
        conn.execute("update ops.push_outbox set state = 'refused', reason = %s, settled_at = now()"
                     " where batch_id = %s and state in ('batched', 'unknown')", (str(error), batch_id))


def drain(conn: psycopg.Connection, target: PushEndpoint, platform: CreditPlatform, *,
          max_batches: int | None = None) -> DrainReport:
    """Send the target's open batches in order (see the module docstring); stops at an outage."""
    report = DrainReport(target.target)
    conn.commit()
    locked = conn.execute("select pg_try_advisory_lock(hashtext(%s))", (f"huiju.push.send:{target.target}",)).fetchone()
    conn.commit()
    if not locked or not locked[0]:
        report.stopped = "another run is sending to this target"
        return report
    try:
        handled = 0
        ahead: _Ahead | None = None
        waiting: deque[dict[str, Any]] = deque()  # the open batches still to send, in order, as last read
        # One request at a time, in order; the request runs in its own thread only so that the next batch's rows
        # are read meanwhile (the platform's work and the warehouse's overlap), not to send two at once.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="push-send") as sending:
            while max_batches is None or handled < max_batches:
                if not waiting:  # read again when used up (batches queued meanwhile) or after a batch not settled
                    waiting.extend(_open_batches(conn, target.target))
                    conn.commit()
                if not waiting:
                    break
                batch = waiting.popleft()
                records = ahead.records if ahead is not None and ahead.batch["batch_id"] == batch["batch_id"] else None
                handled += 1
                following = waiting[0] if waiting and (max_batches is None or handled < max_batches) else None
                try:
                    ahead = _settle(conn, batch, platform, report, records=records, sending=sending,
                                    following=following)
                    if ahead is None:  # split, refused or not settled: what is open next is read again
                        waiting.clear()
                except PlatformUnavailable as exc:
                    conn.rollback()
                    with conn.transaction():
                        conn.execute("update ops.push_batches set last_error = %s where batch_id = %s",
                                     (str(exc), batch["batch_id"]))
                    report.stopped = str(exc)
                    report.errors.append(str(exc))
                    log.warning("push %s: %s; the next run goes on from batch %s", target.target, exc,
                                batch["batch_id"])
                    break
    finally:
        conn.rollback()
        conn.execute("select pg_advisory_unlock(hashtext(%s))", (f"huiju.push.send:{target.target}",))
        conn.commit()
    return report


def _settle(conn: psycopg.Connection, batch: dict[str, Any], platform: CreditPlatform, report: DrainReport, *,
            records: list[tuple[str, str]] | None, sending: ThreadPoolExecutor,
            following: dict[str, Any] | None) -> _Ahead | None:
    """Get one batch's receipts: by a status query when it may have arrived, else by sending it.

    ``records``: the batch's rows when already read. The request goes through ``sending``; the rows of the
    ``following`` batch (the next open one) are read while the platform answers, and returned when this batch
    is settled by its answer; else None (the caller reads again which batches are open).
    """
    if records is None:
        records = _records(conn, batch["batch_id"])
        conn.commit()
    ids = [record_key for record_key, _ in records]
    if batch["state"] == "sending":
        known = platform.status(batch["batch_id"], ids)
        if known is not None:
            report.reconciled += 1
            if record_receipts(conn, batch, known, "status", report):
                return None
            if known.malformed is None or len(known.outcomes) > 0:
                return None  # partly settled; the next run asks again about the rest
    _mark_sending(conn, batch["batch_id"])
    payloads = [payload for _, payload in records]
    answer = sending.submit(platform.submit, batch["batch_id"], batch["idempotency_key"], ids, payloads)
    ahead = None
    if following is not None:  # read only: this batch's receipts are committed before the next is marked or sent
        ahead = _Ahead(following, _records(conn, following["batch_id"]))
        conn.commit()
    try:
        receipts = answer.result()
    except PayloadTooLarge:
        conn.rollback()
        with conn.transaction():
            halves = _split(conn, batch)
        report.split += 1
        log.info("push %s: batch %s too large; split into %s", batch["target"], batch["batch_id"], halves)
        return None
    except BatchRefused as exc:
        conn.rollback()
        _refuse(conn, batch["batch_id"], exc)
        report.refused += 1
        report.errors.append(str(exc))
        return None
    report.batches_sent += 1
    if not record_receipts(conn, batch, receipts, "submit", report):
        # Some receipts could not be read: ask the platform by batch id at once (and next run if still unknown).
        known = platform.status(batch["batch_id"], ids)
        if known is not None:
            report.reconciled += 1
            record_receipts(conn, batch, known, "status", report)
        return None
    return ahead
