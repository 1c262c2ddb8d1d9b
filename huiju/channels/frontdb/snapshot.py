"""The snapshot mode: the whole table every run; keys gone since the last complete read go to ``ops.deletions``.

Batches with unchanged content land as ``already_landed`` (their content id is the hash of their
rows). The key set is kept in ``ops.snapshot_keys`` (migration ``030_frontdb.sql``); deletions
live in ``ops`` rather than as marker rows in ``raw``, because ``raw`` holds only what a
department sent. The raw rows of a deleted record are withdrawn (:func:`withdraw`) with it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from huiju_connectors.frontdb import snapshot_query, stream
from psycopg import sql

from huiju.channel_settings import FrontDbSettings
from huiju.channels.frontdb.source import (
    batch_reference,
    jsonable,
    log,
    mojibake_reason,
    records_payload,
    where,
)
from huiju.landing import LandResult, land_records
from huiju.ledger import make_content_id

if TYPE_CHECKING:
    import sqlalchemy as sa

    from huiju.channels import CollectContext


def collect(ctx: CollectContext, src: sa.Connection, table: sa.TableClause,
                      warnings: list[str]) -> list[LandResult]:
    settings: FrontDbSettings = ctx.settings
    conn = ctx.conn
    source_id = ctx.source.id
    with conn.transaction():
        conn.execute("delete from ops.snapshot_seen where source_id = %s", (source_id,))
    reject = mojibake_reason if settings.detect_mojibake else None
    results = []
    row_no = 1
    for names, rows in stream(src, snapshot_query(table, settings.key_columns), settings.batch_size):
        key_index = [names.index(k) for k in settings.key_columns]
        keys = [json.dumps([jsonable(r[i]) for i in key_index]) for r in rows]
        content = json.dumps([[jsonable(v) for v in r] for r in rows], ensure_ascii=False)
        content_id = make_content_id(source_id, "snapshot", content)
        records = [dict(zip(names, r, strict=True)) for r in rows]
        result = land_records(conn, ctx.registry, ctx.source,
                              reference=batch_reference(settings, f"snapshot {keys[0]} … {keys[-1]}"),
                              content_id=content_id, records=records,
                              payload=records_payload(records),
                              data_date=ctx.data_date,
                              first_row_no=row_no, warnings=warnings, quiet_extra=settings.technical_columns,
                              reject=reject)
        results.append(result)
        row_no += len(rows)
        with conn.transaction(), conn.cursor() as cur, cur.copy(
                "copy ops.snapshot_seen (source_id, key) from stdin") as copy:
            for key in keys:
                copy.write_row([source_id, key])
    # The read is complete: what was there last time and is gone now was deleted at the source.
    with conn.transaction():
        gone = [row[0] for row in conn.execute(
            "insert into ops.deletions (source_id, key, data_date)"
            " select k.source_id, k.key, %s from ops.snapshot_keys k where k.source_id = %s"
            " and not exists (select 1 from ops.snapshot_seen s where s.source_id = k.source_id and s.key = k.key)"
            " returning key",
            (ctx.data_date, source_id)).fetchall()]
        deleted = len(gone)
        if gone:
            withdraw(ctx, gone)
        conn.execute("delete from ops.snapshot_keys where source_id = %s", (source_id,))
        conn.execute("insert into ops.snapshot_keys (source_id, key) select source_id, key from ops.snapshot_seen"
                     " where source_id = %s on conflict do nothing", (source_id,))
        conn.execute("delete from ops.snapshot_seen where source_id = %s", (source_id,))
    if deleted:
        log.warning("%s: %d row(s) deleted at the source since the last snapshot (see ops.deletions)",
                    where(ctx), deleted)
    return results


def withdraw(ctx: CollectContext, keys: list[list]) -> int:
    """Withdraw the raw rows of records deleted at the source (``keys``: their key values) into ``ops.withdrawals``.

    Every row of the source whose key columns hold a deleted key — a key column mapped to a field
    is read from it, any other from ``_extra`` — with the dataset's natural key as received, so the
    warehouse can leave the record out (migration ``250_withdrawals.sql``). Runs in the caller's
    transaction, the one that records the deletions.
    """
    settings: FrontDbSettings = ctx.settings
    dataset = ctx.registry.dataset_of(ctx.source)
    held_in = [sql.SQL("raw.{}").format(sql.Identifier(ctx.source.columns[column])) if column in ctx.source.columns
               else sql.SQL("raw._extra ->> {}").format(sql.Literal(column)) for column in settings.key_columns]
    matches = sql.SQL(" and ").join(sql.SQL("{} = gone.key ->> {}").format(expression, sql.Literal(index))
                                    for index, expression in enumerate(held_in))
    natural = sql.SQL(", ").join(sql.SQL("{}, raw.{}").format(sql.Literal(name), sql.Identifier(name))
                                 for name in dataset.natural_key)
    statement = sql.SQL(
        "insert into ops.withdrawals (load_id, row_no, source_id, dataset, natural_key, source_key)"
        " select raw._load_id, raw._row_no, loads.source_id, loads.dataset, jsonb_build_object({natural}), gone.key"
        " from {table} as raw join ops.loads as loads on loads.load_id = raw._load_id and loads.source_id = %s"
        " join jsonb_array_elements(%s::jsonb) as gone (key) on {matches}"
        " on conflict (load_id, row_no) do nothing"
    ).format(natural=natural, table=sql.Identifier("raw", dataset.dataset), matches=matches)
    withdrawn = ctx.conn.execute(statement, (ctx.source.id, json.dumps(keys, ensure_ascii=False))).rowcount
    log.info("%s: %d raw row(s) withdrawn for %d record(s) deleted at the source", where(ctx), withdrawn, len(keys))
    return withdrawn
