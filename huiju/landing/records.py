"""Landing records — a REST/SOAP page, a front-end database batch — exactly once, with the source's cursor.

:func:`land_records` lands one batch; :func:`land_record_batches` lands consecutive pages in one
transaction and a handful of round trips (group commit), each still its own load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, date, datetime

import psycopg
from huiju_connectors.copy_text import value_text
from psycopg import sql

from huiju.archive import RowsArchiveWriter, archive_bytes, archive_manifest
from huiju.landing.codes import decode_landed
from huiju.landing.raw import ensure_raw_table, summarise_landed
from huiju.landing.results import LandResult, quarantine_malformed
from huiju.landing.rows import PreparedRows, RecordBatch, prepare_rows
from huiju.ledger import get_load, make_load_id, save_cursor
from huiju.masking import mask_all, mask_text
from huiju.registry import Registry, Source

log = logging.getLogger("huiju.landing")


def archive_payload(payload: bytes) -> tuple[str, str]:
    """Archive a payload as received (once); return its sha256 and archive path.

    Content already archived is not written again, so a channel may archive a page ahead of
    landing it (off the landing path) and :func:`land_records` then finds it in place.
    """
    sha = hashlib.sha256(payload).hexdigest()
    return sha, archive_bytes(payload, sha)


def land_records(conn: psycopg.Connection, registry: Registry, source: Source, *, reference: str, content_id: str,
                 records: Iterable[Mapping[str, object]], payload: bytes | None = None,
                 cursor: dict | None = None, data_date: date | None = None, first_row_no: int = 1,
                 warnings: Iterable[str] = (), quiet_extra: Collection[str] = (),
                 reject: Callable[[Mapping[str, object]], str | None] | None = None,
                 chunks: Iterable[bytes] | None = None,
                 archive_chunks: RowsArchiveWriter | None = None) -> LandResult:
    """Land a batch of records (a REST/SOAP page, a database extract) exactly once, with its cursor.

    ``content_id`` identifies the batch deterministically (e.g. the sha256 of the page as
    received, or of the extract's watermark range): the load id derives from it, so a rerun
    after a crash finds the batch already landed. ``payload`` (the bytes as received) is
    archived for replay. Records stream into one ``COPY``: keys mapped in ``source.columns``
    go to their fields, any other key is kept in ``_extra``. The source's ``cursor`` is saved
    in the same transaction, also when the batch was already landed, so the position always
    moves with the data and never ahead of it.

    Rows are numbered from ``first_row_no`` (a page's records carry their position in the whole
    response, as the department would count them). ``warnings`` (e.g. schema drift noticed by
    the channel) are stored in the ledger row with the landing's own. Keys in ``quiet_extra``
    (a table's key or watermark column) go to ``_extra`` without a warning. ``reject(record)``
    returns a reason (in Chinese) for a record to quarantine instead of landing it (text in a
    wrongly declared encoding); such a record still counts as received. ``chunks``, instead of
    ``records``, is the batch already in COPY text form, columns ``_row_no, _extra`` and the
    mapped fields in ``source.columns`` order (a PostgreSQL source's own ``COPY … TO STDOUT``):
    it is written through untouched. ``archive_chunks`` (with ``chunks``, instead of ``payload``) is
    given every chunk as it is written and makes the original to archive: an extract is archived as it
    was read while it streams into the ``COPY`` (the source's read and the warehouse's write overlap, as
    in a plain pipe); the archive is written before the transaction commits, as ``payload``'s is before
    it begins.
    """
    dataset = registry.dataset_of(source)
    ensure_raw_table(conn, dataset)
    started = time.perf_counter()
    load_id = make_load_id(source.id, content_id)
    sha256, archive_rel, size = content_id, None, 0
    warnings = list(warnings)
    arrived = datetime.now(UTC)  # the ledger's received_at, and the replay manifest's

    def archive(original: bytes) -> tuple[str, str, int]:
        """The original archived with its replay manifest: (sha256, archive path, size)."""
        digest, relative = archive_payload(original)
        archive_manifest({"kind": "records", "load_id": load_id, "source_id": source.id, "channel": source.channel,
                          "reference": reference, "archive_path": relative, "content_id": content_id,
                          "data_date": data_date, "received_at": arrived.isoformat(),
                          "first_row_no": first_row_no, "warnings": warnings, "quiet_extra": sorted(quiet_extra),
                          "reject": reject is not None, "chunks": chunks is not None})
        return digest, relative, len(original)

    if payload is not None:
        sha256, archive_rel, size = archive(payload)
    mapping = list(source.columns.items())
    names = [sql.Identifier(f) for _, f in mapping]
    statement = sql.SQL("copy {table} (_row_no, _extra, {columns}) from stdin").format(
        table=sql.Identifier("raw", dataset.dataset), columns=sql.SQL(", ").join(names))
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (load_id,))
        existing = get_load(conn, load_id)
        if existing is not None and existing.status != "failed":
            if cursor is not None:
                save_cursor(conn, source.id, cursor, load_id)
            return LandResult(source.id, reference, load_id, "already_landed", existing.rows_received or 0)
        conn.execute(
            "insert into ops.loads (load_id, source_id, department, dataset, channel, reference, sha256, bytes,"
            " archive_path, status, data_date, received_at, origin)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'received', %s, %s, %s)"
            " on conflict (load_id) do update set status = 'received', error = null,"
            " received_at = excluded.received_at",
            (load_id, source.id, source.department, dataset.dataset, source.channel, mask_text(reference), sha256,
             size, archive_rel, data_date, arrived, source.origin),
        )
        # Every row carries its _row_no, so only the load id and reference defaults are needed
        # (one statement instead of _Batch's row sequence: this runs once per page).
        conn.execute("select set_config('huiju.load_id', %s, true), set_config('huiju.source_ref', %s, true)",
                     (load_id, reference))
        landed = 0
        unknown: set[str] = set()
        known = set(source.columns)
        keys = [key for key, _ in mapping]
        rejected: list[tuple[int, str, str]] = []
        with conn.cursor() as cur, cur.copy(statement) as copy:
            for chunk in chunks or ():
                copy.write(chunk)
                if archive_chunks is not None:
                    archive_chunks.write(chunk)
                landed += chunk.count(b"\n")  # COPY text escapes newlines in values: one per row
            for landed, record in enumerate(records, start=1):
                if reject is not None and (reason := reject(record)) is not None:
                    text = ",".join(value_text(v) or "" for v in record.values())
                    rejected.append((first_row_no + landed - 1, reason, mask_text(text)[:500]))
                    continue
                extra = {k: v for k, v in record.items() if k not in known}
                unknown.update(extra)
                copy.write_row([first_row_no + landed - 1,
                                json.dumps(extra, ensure_ascii=False, default=str) if extra else None,
                                *(v if type(v) is str else value_text(v)  # text is the common case
                                  for v in map(record.get, keys))])
        decode_landed(conn, registry, source, [load_id])
        summarise_landed(conn, dataset.dataset)
        if rejected:
            quarantine_malformed(conn, load_id, dataset.dataset, rejected)
        unknown.difference_update(quiet_extra)
        warnings = list(warnings)
        if unknown:
            warnings.append(f"fields not in the configuration were kept in _extra: {', '.join(sorted(unknown))}")
        if archive_chunks is not None:
            sha256, archive_rel, size = archive(archive_chunks.finish())
        conn.execute(
            "update ops.loads set rows_received = %s, landed_at = now(), land_seconds = %s, warnings = %s,"
            " sha256 = %s, bytes = %s, archive_path = %s where load_id = %s",
            (landed, time.perf_counter() - started, json.dumps(mask_all(warnings), ensure_ascii=False),
             sha256, size, archive_rel, load_id),
        )
        if cursor is not None:
            save_cursor(conn, source.id, cursor, load_id)
    log.info("%s: landed %s as %s: %d records", source.id, reference, load_id, landed)
    return LandResult(source.id, reference, load_id, "landed", landed, warnings=warnings)


def land_record_batches(conn: psycopg.Connection, registry: Registry, source: Source,
                        batches: list[RecordBatch], *, cursor: dict | None = None,
                        data_date: date | None = None, durable: bool = True,
                        received_at: datetime | None = None) -> list[LandResult]:
    """Land consecutive batches (pages) in one transaction and a handful of round trips.

    Each batch becomes exactly what :func:`land_records` would make of it — its own load (load
    id from its content id, ledger row, archived payload, rows numbered from its
    ``first_row_no``, the same warnings) — and a batch already landed is skipped. What differs
    is the cost: the lock and the ledger look-up in one round trip, one ledger insert
    (pipelined), one ``COPY`` for all of them and the cursor with the timing in one more,
    instead of about ten round trips each. ``cursor`` (the position after the last batch) is
    saved in the same transaction. Run inside the caller's transaction it becomes a savepoint
    of it (call :func:`ensure_raw_table` before opening that transaction: creating the table
    commits).

    ``durable=False`` commits without waiting for the WAL flush (``synchronous_commit = off``).
    The transaction stays atomic — a server crash keeps or loses its data, ledger rows and
    cursor together, and a lost group is simply fetched and landed again — so a channel
    passes it for every group of a run but the last: the last, durable commit flushes the
    WAL up to itself, which makes every earlier group durable too. (A flush costs a few
    milliseconds; a run of 2,000 pages would otherwise pay it hundreds of times.)

    A batch with ``held`` set gets a ledger row with status ``held`` and the reason in
    ``error`` (outcome ``held``), and no rows; it must be the last batch, and ``cursor`` must be
    the position *before* it, so the next run asks for it again.

    ``received_at``: the ledger's time of delivery (default: now) — the time the channel wrote in the
    pages' replay manifest (:func:`huiju.archive.archive_pages_manifest`), or a replay's original time.
    """
    dataset = registry.dataset_of(source)
    ensure_raw_table(conn, dataset)
    if any(batch.held for batch in batches[:-1]):
        raise ValueError(f"{source.id}: only the last batch of a group can be held")
    started = time.perf_counter()
    arrived = received_at or datetime.now(UTC)
    prepared = []
    for batch in batches:
        sha256, archive_rel, size = batch.content_id, None, 0
        if batch.payload is not None:
            sha256, archive_rel = batch.archived or archive_payload(batch.payload)
            size = len(batch.payload)
        prepared.append((batch, make_load_id(source.id, batch.content_id), sha256, archive_rel, size))
    mapping = list(source.columns.items())
    known = set(source.columns)
    results: list[LandResult] = []
    with conn.transaction():
        ids = sorted({load_id for _, load_id, *_ in prepared})
        with conn.pipeline():
            if not durable:
                conn.execute("set local synchronous_commit = off")
            # In a fixed order, so two runs of the same source can never deadlock on each other's pages.
            conn.execute("select pg_advisory_xact_lock(hashtext(id))"
                         " from (select id from unnest(%s::text[]) as id order by id) as ordered", (ids,))
            # A statement of its own, after the lock: its snapshot sees whatever the lock waited for.
            lookup = conn.execute("select load_id, status, rows_received, landed_at from ops.loads"
                                  " where load_id = any(%s)", (ids,))
        existing = {row[0]: row for row in lookup.fetchall()}
        fresh: list[tuple[PreparedRows, str]] = []
        ledger_rows = []
        held_rows = []
        for batch, load_id, sha256, archive_rel, size in prepared:
            row = existing.get(load_id)
            # A failed batch, or one held before landing (no rows), has nothing in raw: land it now.
            retry = row is None or row[1] == "failed" or (row[1] == "held" and row[3] is None)
            if not retry or any(load_id == f[1] for f in fresh):
                results.append(LandResult(source.id, batch.reference, load_id, "already_landed",
                                          (row[2] or 0) if row else batch.count))
                continue
            unknown = sorted(batch.fields - known)
            warnings = list(batch.warnings)
            if unknown:
                warnings.append(f"fields not in the configuration were kept in _extra: {', '.join(unknown)}")
            warnings = mask_all(warnings)  # record keys are the department's: one could be an ID number
            if batch.held:
                held = mask_text(batch.held)
                held_rows.append((load_id, source.id, source.department, dataset.dataset, source.channel,
                                  mask_text(batch.reference), sha256, size, archive_rel, held,
                                  json.dumps(warnings, ensure_ascii=False), data_date, arrived, source.origin))
                results.append(LandResult(source.id, batch.reference, load_id, "held", batch.count,
                                          error=held, warnings=warnings))
                continue
            rows = batch.rows if batch.rows is not None else prepare_rows(source, batch)
            received = rows.count + len(rows.rejected)
            fresh.append((rows, load_id))
            ledger_rows.append((load_id, source.id, source.department, dataset.dataset, source.channel,
                                mask_text(batch.reference), sha256, size, archive_rel, received,
                                json.dumps(warnings, ensure_ascii=False), data_date, arrived, source.origin))
            results.append(LandResult(source.id, batch.reference, load_id, "landed", received, len(rows.rejected),
                                      warnings=warnings))
        if held_rows:
            conn.execute(
                "insert into ops.loads (load_id, source_id, department, dataset, channel, reference, sha256,"
                " bytes, archive_path, status, error, warnings, data_date, received_at, origin)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'held', %s, %s, %s, %s, %s)"
                " on conflict (load_id) do update set status = 'held', error = excluded.error,"
                " warnings = excluded.warnings, received_at = excluded.received_at", held_rows[0])
        if fresh:
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into ops.loads (load_id, source_id, department, dataset, channel, reference, sha256,"
                    " bytes, archive_path, status, rows_received, landed_at, warnings, data_date, received_at,"
                    " origin) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'received', %s, now(), %s, %s, %s, %s)"
                    " on conflict (load_id) do update set status = 'received', error = null,"
                    " received_at = excluded.received_at,"
                    " rows_received = excluded.rows_received, landed_at = now(), warnings = excluded.warnings",
                    ledger_rows)
            statement = sql.SQL("copy {table} (_load_id, _source_ref, _row_no, _extra, {columns}) from stdin").format(
                table=sql.Identifier("raw", dataset.dataset),
                columns=sql.SQL(", ").join(sql.Identifier(f) for _, f in mapping))
            with conn.cursor() as cur, cur.copy(statement) as copy:
                for rows, _ in fresh:
                    copy.write(rows.text)
            decode_landed(conn, registry, source, [load_id for _, load_id in fresh])
            summarise_landed(conn, dataset.dataset)
            for rows, load_id in fresh:
                if rows.rejected:
                    quarantine_malformed(conn, load_id, dataset.dataset, list(rows.rejected))
        with conn.pipeline():
            if fresh:
                # The batches landed together; each is charged its share of the time.
                conn.execute("update ops.loads set land_seconds = %s where load_id = any(%s)",
                             ((time.perf_counter() - started) / len(fresh), [load_id for _, load_id in fresh]))
            if cursor is not None:
                last_landed = [load_id for batch, load_id, *_ in prepared if not batch.held]
                save_cursor(conn, source.id, cursor, last_landed[-1] if last_landed else None)
    for result in results:
        if result.outcome == "landed":
            log.info("%s: landed %s as %s: %d records", source.id, result.reference, result.load_id,
                     result.rows_received)
        elif result.outcome == "held":
            log.warning("%s: held %s as %s: %s", source.id, result.reference, result.load_id, result.error)
    return results
