"""The front-end database channel (前置库): a department's table or view, read incrementally.

Modes (``frontdb.mode``):

``watermark``
    Rows are read ordered by (watermark, key columns) from the greatest watermark already
    landed (``>=``), skipping exactly the keys already landed at that watermark, and landed in
    batches. Each batch is landed with its position — its last watermark and every key landed
    at that watermark — as the source's cursor, in the transaction that lands it
    (``land_records``), so the position never runs ahead of the data and a run killed at any
    instant resumes after the last batch that committed. A row arriving later with the very
    watermark already stored is read whatever its key, and no key is read twice. A row updated
    while we read gets a newer watermark and is landed, once, as a new version (on this run
    or the next). Naive timestamps are compared as the department wrote them (local time,
    Asia/Shanghai, which is also the session time zone), never converted, so there is no gap
    or overlap at midnight or anywhere else.
``exchange_flag``
    The 前置库 exchange protocol: rows whose flag column holds the pending value are read in
    key order, landed, then marked on the source as taken (with the time) or failed (with the
    reason, for rows quarantined at landing). The acknowledgement owed is stored as the
    source's cursor *with* the landed batch; a crash before the write-back is completed by
    the next run before it reads anything, so nothing is landed twice.
``snapshot``
    The whole table every run, in key order. Batches with unchanged content land as
    ``already_landed`` (their content id is the hash of their rows). After a complete read,
    keys present last time and gone now are written to ``ops.deletions``; the key set is kept
    in ``ops.snapshot_keys`` (migration ``030_frontdb.sql``). Deletions live in ``ops`` rather
    than as marker rows in ``raw``, because ``raw`` holds only what a department sent; the raw
    rows of a deleted record are *withdrawn* (``ops.withdrawals``, migration
    ``250_withdrawals.sql``) in the same transaction, which takes the record out of staging,
    credit and share at the next dbt build and lists it in ``share.share_withdrawals``.

Every batch is archived as read — a compressed, content-addressed rows archive
(:func:`huiju.archive.rows_archive`: the records with their types, or the COPY text the
source rendered) — so ``archive_path`` is set and the batch can be replayed (:mod:`huiju.replay`).

Limits of the watermark mode: rows whose watermark is NULL are never read (the query says so
explicitly); a source transaction that commits long after stamping its rows with a watermark
*below* the stored one is overtaken unless the watermark has a look-back window
(``watermark.lookback``: seconds, or ids): each run then reads again from that far below the
stored watermark, and the rows re-read are recognised by key and content (the cursor keeps a
digest of each key landed within the window, ``recent``) and not landed twice; a late commit
older than the window is still missed. With a window, rows pass through Python (the row path)
to be compared. The keys at the stored watermark are kept in the cursor, so a bulk update
stamping a million rows with one timestamp makes a large cursor (use ``exchange_flag`` or
``snapshot`` for such tables); so does a window over a table that changes fast.

Speed: from a PostgreSQL database in UTF8 the watermark mode moves each batch with ``COPY`` on
both sides (the source renders raw's text form itself, no row passes through Python; the
batch's text is kept whole, archived, then written to raw's COPY). From MySQL/MariaDB the
source renders each row as a line of raw's COPY text too, read as bytes through an
unbuffered cursor — unless a column cannot be rendered exactly (floating point, binary) or a
text column is declared latin1, where only Python can recognise GBK bytes. Those tables,
Oracle and the other modes stream rows through SQLAlchemy's server-side cursor into
``land_records``. In UTF8 no column can be declared latin1, so the encoding check is not
needed on the PostgreSQL path.

Schema drift is checked before reading: a mapped column missing at the source fails the
batch in the ledger with an error naming the column; a new column is read and lands in
``_extra`` (with a warning); a changed column type is reported in the batch's warnings (raw is
text as received, so nothing is cast to NULL). Text in a wrongly declared encoding (GBK bytes
in a latin1 column) is quarantined with a reason in Chinese instead of landing as mojibake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from huiju_connectors.frontdb import create_source_engine, describe_table, map_error, source_table

from huiju.channel_settings import FrontDbSettings
from huiju.channels.frontdb import exchange, snapshot, watermark
from huiju.channels.frontdb.source import check_schema, endpoint_of, fail, read_cursor, where
from huiju.landing import LandResult, ensure_raw_table

if TYPE_CHECKING:
    from huiju.channels import CollectContext

#: Each mode's row path (a mode's faster paths are chosen in :func:`collect`).
MODES: dict[str, Callable[..., list[LandResult]]] = {
    "watermark": watermark.collect_rows, "exchange_flag": exchange.collect, "snapshot": snapshot.collect,
}


def collect(ctx: CollectContext) -> list[LandResult]:
    """Read what is new in the department's table and land it (see the module docstring)."""
    settings: FrontDbSettings = ctx.settings
    ensure_raw_table(ctx.conn, ctx.registry.dataset_of(ctx.source))
    engine = create_source_engine(endpoint_of(ctx))
    try:
        with engine.connect() as src:
            columns = describe_table(src, settings.table, settings.table_schema)
            src.commit()
            warnings, error = check_schema(ctx, columns)
            if error is not None:
                return [fail(ctx, error)]
            table = source_table(settings.table, [c.name for c in columns], settings.table_schema)
            if settings.mode == "watermark":
                watermark.upgrade_cursor(ctx, src, table)
            if watermark.copy_path_ok(src, settings):
                return watermark.collect_copy(ctx, src, columns, warnings)
            if settings.dialect == "mysql" and settings.mode == "watermark":
                assert settings.watermark is not None
                position = watermark.Position(read_cursor(ctx.conn, ctx.source.id), settings.watermark)
                query = watermark.mysql_query(src, settings, list(ctx.source.columns),
                                              since=position.since() is not None)
                if query is not None:
                    return watermark.collect_mysql(ctx, src, query, position, warnings)
            return MODES[settings.mode](ctx, src, table, warnings)
    except sa.exc.SQLAlchemyError as exc:
        raise map_error(exc, where(ctx)) from exc
    except Exception as exc:
        if type(exc).__module__.startswith("pymysql."):  # the rendered MySQL path reads through the driver
            raise map_error(exc, where(ctx)) from exc
        raise
    finally:
        engine.dispose()

