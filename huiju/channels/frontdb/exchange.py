"""The exchange-flag mode (前置库 exchange protocol): rows marked pending are read, landed, then marked taken or failed.

The acknowledgement owed is stored as the source's cursor *with* the landed batch; a crash
before the write-back is completed by the next run before it reads anything, so nothing is
landed twice.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from huiju_connectors.frontdb import flag_query, mark_rows

from huiju.channel_settings import FrontDbSettings
from huiju.channels.frontdb.source import (
    batch_reference,
    jsonable,
    log,
    mojibake_reason,
    read_cursor,
    records_payload,
    where,
)
from huiju.landing import LandResult, land_records
from huiju.ledger import make_content_id, make_load_id, save_cursor

if TYPE_CHECKING:
    import sqlalchemy as sa

    from huiju.channels import CollectContext


def acknowledge(src: sa.Connection, table: sa.TableClause, settings: FrontDbSettings, owed: dict) -> None:
    """Write "taken" (with the time) and "failed" (with the reason) back to the source, then commit."""
    flag = settings.exchange_flag
    assert flag is not None
    # The department's timestamps are naive local time; write ours the same way.
    now = dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None, microsecond=0)
    keys = settings.key_columns
    pending = table.c[flag.column] == flag.pending
    taken = {flag.column: flag.taken}
    if flag.taken_at_column:
        taken[flag.taken_at_column] = now
    mark_rows(src, table, keys, owed.get("taken", []), taken, only_if=pending)
    by_reason: dict[str, list] = {}
    for key, reason in owed.get("failed", []):
        by_reason.setdefault(reason, []).append(key)
    for reason, key_values in by_reason.items():
        values: dict[str, Any] = {flag.column: flag.failed}
        if flag.reason_column:
            values[flag.reason_column] = reason
        mark_rows(src, table, keys, key_values, values, only_if=pending)
    src.commit()


def collect(ctx: CollectContext, src: sa.Connection, table: sa.TableClause,
                      warnings: list[str]) -> list[LandResult]:
    settings: FrontDbSettings = ctx.settings
    flag = settings.exchange_flag
    assert flag is not None

    def settle(owed: dict) -> None:
        acknowledge(src, table, settings, owed)
        with ctx.conn.transaction():
            save_cursor(ctx.conn, ctx.source.id, {"mode": "exchange_flag", "owed": None}, None)

    stored = read_cursor(ctx.conn, ctx.source.id)
    if stored and stored.get("owed"):
        # The last run landed a batch and died before telling the department: finish that first.
        log.info("%s: completing the write-back of %s", where(ctx), stored["owed"].get("load_id"))
        settle(stored["owed"])
    results: list[LandResult] = []
    previous: list | None = None
    row_no = 1
    while True:
        rows = src.execute(flag_query(table, flag.column, flag.pending, settings.key_columns,
                                      settings.batch_size)).fetchall()
        src.commit()  # end the read transaction so the write-back below is not blocked by it
        if not rows:
            break
        records = [r._mapping for r in rows]
        keys = [[jsonable(r[k]) for k in settings.key_columns] for r in records]
        if keys == previous:
            raise RuntimeError(f"{where(ctx)}: the rows just acknowledged are still pending; "
                               f"is {flag.column} writable by this account?")
        previous = keys
        reasons = [mojibake_reason(r) if settings.detect_mojibake else None for r in records]
        rejected = {id(r): reason for r, reason in zip(records, reasons, strict=True) if reason}
        owed = {"taken": [k for k, reason in zip(keys, reasons, strict=True) if not reason],
                "failed": [[k, reason] for k, reason in zip(keys, reasons, strict=True) if reason]}
        content_id = make_content_id(ctx.source.id, "exchange_flag", json.dumps(keys))
        owed["load_id"] = make_load_id(ctx.source.id, content_id)
        reference = batch_reference(settings, f"{flag.column}={flag.pending} {keys[0]} … {keys[-1]}")
        result = land_records(ctx.conn, ctx.registry, ctx.source, reference=reference,
                              content_id=content_id, records=records,
                              payload=records_payload(records),
                              cursor={"mode": "exchange_flag", "owed": owed}, data_date=ctx.data_date,
                              first_row_no=row_no, warnings=warnings, quiet_extra=settings.technical_columns,
                              reject=lambda r, found=rejected: found.get(id(r)))
        results.append(result)
        row_no += len(rows)
        settle(owed)
    return results
