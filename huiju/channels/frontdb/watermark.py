"""The watermark mode: rows read by (watermark, keys) from the greatest watermark landed, in batches.

Three paths, one position (:class:`Position`): rows through SQLAlchemy (every dialect;
:func:`collect_rows`), a MySQL/MariaDB source rendering raw's COPY text itself
(:func:`collect_mysql`), a PostgreSQL source piping ``COPY`` into ``COPY`` (:func:`collect_copy`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import psycopg
import sqlalchemy as sa
from huiju_connectors.frontdb import (
    SourceColumn,
    WatermarkCopy,
    after_condition,
    mysql_columns,
    mysql_copy_select,
    stream,
    watermark_query,
)
from huiju_connectors.incremental import KeysAtWatermark, trailing_keys
from psycopg.types.json import Jsonb

from huiju.archive import RowsArchiveWriter, rows_archive
from huiju.channel_settings import FrontDbSettings, WatermarkSettings
from huiju.channels.frontdb.source import (
    batch_reference,
    jsonable,
    mojibake_reason,
    pair_text,
    read_cursor,
    records_payload,
    watermark_value,
)
from huiju.landing import LandResult, land_records
from huiju.ledger import make_content_id

if TYPE_CHECKING:
    from huiju.channels import CollectContext


class Position:
    """The watermark mode's position: the greatest watermark landed and every key landed at it.

    Reading resumes at ``watermark >= stored`` and skips exactly the keys already landed at the
    stored watermark (:class:`huiju_connectors.incremental.KeysAtWatermark`), so a row arriving
    later with that very watermark is read whatever its key. The keys at the watermark are saved
    with each batch (in ``keys_at_watermark``), in the transaction that lands it. Values are kept
    in their JSON form (:func:`~huiju.channels.frontdb.source.jsonable`), which is how rows are
    compared with them.
    """

    def __init__(self, stored: dict | None, mark: WatermarkSettings):
        self.column, self.kind, self.lookback = mark.column, mark.type, mark.lookback
        watermark, keys = None, []
        #: With a look-back window: each key landed within it (JSON) → [its watermark, its content's digest].
        self.recent: dict[str, list] | None = None
        if stored and stored.get("mode") == "watermark" and stored.get("column") == mark.column:
            if "keys_at_watermark" not in stored:
                raise ValueError("a watermark cursor without keys_at_watermark: run upgrade_cursor first")
            watermark, keys = stored["watermark"], stored["keys_at_watermark"]
            self.recent = stored.get("recent")
        self.marks = KeysAtWatermark(watermark, keys)
        # The window opens once the cursor knows what landed within it: the first run with a look-back
        # reads from the stored watermark as before (what lies below it landed before anything was
        # remembered, and would land twice), and remembers from then on.
        self.looking_back = bool(self.lookback) and self.recent is not None
        if self.lookback and self.recent is None:
            self.recent = {}

    def since(self) -> Any:
        """The value to read from (``>=``): the stored watermark, less the look-back window; None: from the start."""
        watermark = self.marks.watermark
        if watermark is None:
            return None
        value = watermark_value(watermark, self.kind)
        return value - self._window(value) if self.looking_back else value

    def _window(self, value: Any) -> Any:
        if self.kind == "integer":
            return self.lookback
        if isinstance(value, dt.datetime):
            return dt.timedelta(seconds=self.lookback)
        return dt.timedelta(days=-(-self.lookback // 86400))  # a date watermark: whole days

    def unseen(self, rows: list, wm_index: int, key_index: list[int]) -> list:
        """The rows not landed before, as recognised by key and content; each kept is remembered.

        A row read again within the look-back window with the content it landed with is dropped;
        a row with a new key, or a key whose content changed (a new version), is kept.
        """
        assert self.recent is not None
        kept = []
        for r in rows:
            key = json.dumps([jsonable(r[i]) for i in key_index], ensure_ascii=False)
            digest = hashlib.sha256(json.dumps([jsonable(v) for v in r], ensure_ascii=False).encode()).hexdigest()
            landed = self.recent.get(key)
            if landed is not None and landed[1] == digest[:32]:
                continue
            self.recent[key] = [jsonable(r[wm_index]), digest[:32]]
            kept.append(r)
        return kept

    def advance(self, watermark: Any, keys_at_last: list[list]) -> dict:
        """Move to the end of a batch (its last watermark, and its keys at it); the cursor to save."""
        self.marks.advance(watermark, keys_at_last)
        cursor = {"mode": "watermark", "column": self.column, "watermark": watermark, "keys": keys_at_last[-1],
                  "keys_at_watermark": self.marks.key_list()}
        if self.recent is not None:  # what the next run's window re-reads, and no more
            value = watermark_value(watermark, self.kind)
            floor = value - self._window(value)
            self.recent = {key: seen for key, seen in self.recent.items()
                           if watermark_value(seen[0], self.kind) >= floor}
            cursor["recent"] = dict(self.recent)
        return cursor


def upgrade_cursor(ctx: CollectContext, src: sa.Connection, table: sa.TableClause) -> None:
    """Turn a watermark cursor saved as a (watermark, key) pair into the keys landed at its watermark.

    The pair meant "every row up to this one in (watermark, key) order was landed", so the keys
    landed at the watermark are the source's keys at it up to the pair's (a row that arrived
    later with a smaller key was missed by the pair and stays missed: nothing says it is not).
    Saved at once, in its own transaction: it describes the same landed rows.
    """
    settings: FrontDbSettings = ctx.settings
    mark = settings.watermark
    assert mark is not None
    stored = read_cursor(ctx.conn, ctx.source.id)
    if not (stored and stored.get("mode") == "watermark" and stored.get("column") == mark.column
            and "keys_at_watermark" not in stored):
        return
    keys = [table.c[k] for k in settings.key_columns]
    watermark = watermark_value(stored["watermark"], mark.type)
    rows = src.execute(sa.select(*keys).where(table.c[mark.column] == watermark,
                                              sa.not_(after_condition(keys, stored["keys"])))
                       .order_by(*keys)).fetchall()
    src.commit()
    landed = [[jsonable(v) for v in r] for r in rows] or [list(stored["keys"])]
    with ctx.conn.transaction():  # the position only: the cursor's load id stays the batch it came with
        ctx.conn.execute("update ops.cursors set position = %s, updated_at = now() where source_id = %s",
                         (Jsonb({**stored, "keys_at_watermark": landed}), ctx.source.id))


def collect_rows(ctx: CollectContext, src: sa.Connection, table: sa.TableClause,
                       warnings: list[str]) -> list[LandResult]:
    settings: FrontDbSettings = ctx.settings
    mark = settings.watermark
    assert mark is not None
    position = Position(read_cursor(ctx.conn, ctx.source.id), mark)
    query = watermark_query(table, mark.column, settings.key_columns, position.since())
    # With a look-back window the rows below the stored watermark come first: the rows already landed
    # are recognised by key and content instead (Position.unseen).
    skip = bool(position.marks.keys) and not position.looking_back
    reject = mojibake_reason if settings.detect_mojibake else None
    results = []
    row_no = 1
    for names, batch in stream(src, query, settings.batch_size):
        wm_index = names.index(mark.column)
        key_index = [names.index(k) for k in settings.key_columns]
        rows = list(batch)
        if skip:  # rows at the stored watermark come first: drop the ones already landed
            kept = []
            for n, r in enumerate(rows):
                if jsonable(r[wm_index]) != position.marks.watermark:
                    kept += rows[n:]
                    skip = False
                    break
                if not position.marks.landed(position.marks.watermark, [jsonable(r[i]) for i in key_index]):
                    kept.append(r)
            rows = kept
            if not rows:
                continue
        if position.recent is not None:
            rows = position.unseen(rows, wm_index, key_index)
            if not rows:
                continue
        first, tail = rows[0], []
        for r in reversed(rows):  # the trailing rows at the last watermark (few, unless a bulk update)
            tail.append([jsonable(r[wm_index]), *(jsonable(r[i]) for i in key_index)])
            if tail[-1][0] != tail[0][0]:
                break
        tail.reverse()
        first_pair = [jsonable(first[wm_index]), *(jsonable(first[i]) for i in key_index)]
        last_pair = tail[-1]
        cursor = position.advance(*trailing_keys(tail))
        content_id = make_content_id(ctx.source.id, "watermark", json.dumps(first_pair), json.dumps(last_pair),
                                     str(len(rows)))
        records = [dict(zip(names, r, strict=True)) for r in rows]
        result = land_records(ctx.conn, ctx.registry, ctx.source,
                              reference=batch_reference(settings, f"{pair_text(first_pair)} … {pair_text(last_pair)}"),
                              content_id=content_id, records=records,
                              payload=records_payload(records), cursor=cursor,
                              data_date=ctx.data_date, first_row_no=row_no, warnings=warnings,
                              quiet_extra=settings.technical_columns, reject=reject)
        results.append(result)
        row_no += len(rows)
    return results


def mysql_query(src: sa.Connection, settings: FrontDbSettings, mapped: list[str], since: bool) -> str | None:
    """The MySQL/MariaDB query rendering raw's COPY text, or None when the rows must pass through Python.

    Rows go through Python when a column cannot be rendered exactly (floating point, binary)
    or, with ``detect_mojibake``, when a text column is declared latin1: only the row path can
    recognise GBK bytes hidden there.
    """
    mark = settings.watermark
    if settings.dialect != "mysql" or mark is None or mark.lookback:
        return None
    columns = mysql_columns(src, settings.table, settings.table_schema)
    if settings.detect_mojibake and any(c.charset in ("latin1", "cp1252") for c in columns):
        return None
    return mysql_copy_select(settings.table, settings.table_schema, columns, mapped, mark.column,
                             settings.key_columns, since)


def collect_mysql(ctx: CollectContext, src: sa.Connection, query: str,
                             position: Position, warnings: list[str]) -> list[LandResult]:
    """The watermark mode for MySQL/MariaDB, the source rendering each row as a line of raw's COPY text.

    One unbuffered (server-side) cursor reads ``(line, position)`` pairs as bytes, in large
    blocks; the channel numbers the lines and hands each batch to ``land_records`` as COPY
    text, with the cursor of its last row, exactly as on the row path — but no value is
    converted or decoded in Python, which is what makes the row path slow.
    """
    import pymysql.cursors  # why: the MySQL driver costs 10 MB of memory; only MySQL sources need it

    settings: FrontDbSettings = ctx.settings
    source = ctx.source
    driver = src.connection.driver_connection
    since = position.since()
    skip = bool(position.marks.keys)
    start = position.marks.watermark
    results: list[LandResult] = []
    row_no = 1

    def land(rows: list[tuple[bytes, bytes]]) -> None:
        nonlocal row_no
        tail = []
        for _, pos in reversed(rows):  # the trailing rows at the last watermark
            tail.append(json.loads(pos))
            if tail[-1][0] != tail[0][0]:
                break
        tail.reverse()
        first_pair, last_pair = json.loads(rows[0][1]), tail[-1]
        cursor = position.advance(*trailing_keys(tail))
        first = row_no

        def chunks() -> Iterator[bytes]:
            for at in range(0, len(rows), 10_000):
                yield b"".join([b"%d\t%s\n" % (n, line)
                                for n, (line, _) in enumerate(rows[at:at + 10_000], start=first + at)])

        text = b"".join(chunks())  # kept whole: the batch is archived as read (a rows archive) as it lands

        result = land_records(ctx.conn, ctx.registry, source,
                              reference=batch_reference(settings, f"{pair_text(first_pair)} … {pair_text(last_pair)}"),
                              content_id=make_content_id(source.id, "watermark", json.dumps(first_pair),
                                                         json.dumps(last_pair), str(len(rows))),
                              records=(), chunks=[text], payload=rows_archive("copy", text), cursor=cursor,
                              data_date=ctx.data_date, warnings=warnings)
        results.append(result)
        row_no += len(rows)

    batch: list[tuple[bytes, bytes]] = []
    with driver.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(query, (since,) if since is not None else None)
        while block := cur.fetchmany(10_000):
            if skip:  # rows at the stored watermark come first: drop the ones already landed
                kept = []
                for n, (line, pos) in enumerate(block):
                    at = json.loads(pos)
                    if at[0] != start:
                        kept += block[n:]
                        skip = False
                        break
                    if not position.marks.landed(start, at[1:]):
                        kept.append((line, pos))
                block = kept
            batch += block
            while len(batch) >= settings.batch_size:
                land(batch[:settings.batch_size])
                batch = batch[settings.batch_size:]
        if batch:
            land(batch)
    return results


def copy_path_ok(src: sa.Connection, settings: FrontDbSettings) -> bool:
    """PostgreSQL → PostgreSQL can move batches as COPY text, with no row passing through Python.

    Only from a UTF8 database: there no column can be declared latin1, so the wrongly declared
    encoding the row path looks for cannot occur.
    """
    if settings.dialect != "postgresql" or settings.mode != "watermark" or settings.watermark.lookback:
        return False
    return src.exec_driver_sql("show server_encoding").scalar() == "UTF8"


def collect_copy(ctx: CollectContext, src: sa.Connection, columns: list[SourceColumn],
                 warnings: list[str]) -> list[LandResult]:
    """The watermark mode for a PostgreSQL source, batch by batch with ``COPY`` on both sides.

    The source renders each batch in raw's text form (:class:`huiju_connectors.frontdb.WatermarkCopy`),
    piped into the raw table's ``COPY FROM STDIN``; the batch lands with its cursor in one
    transaction, as on the row path.
    """
    settings: FrontDbSettings = ctx.settings
    mark = settings.watermark
    assert mark is not None
    source = ctx.source
    driver = src.connection.driver_connection  # the source's psycopg connection
    position = Position(read_cursor(ctx.conn, source.id), mark)
    pipe = WatermarkCopy(driver, settings.table, settings.table_schema, columns, list(source.columns), mark.column,
                         settings.key_columns, position.since(), position.marks.key_list())
    new_cols = [n for n in pipe.extra_names if n not in settings.technical_columns]
    if new_cols:
        warnings = [*warnings, f"fields not in the configuration were kept in _extra: {', '.join(sorted(new_cols))}"]
    # Each batch's statements (its end, its keys at the last watermark, its COPY) see one snapshot.
    driver.commit()
    driver.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    results = []
    row_no = 1
    after: list | None = None  # the pair of the last row landed by this run
    while True:
        last = pipe.batch_end(after, settings.batch_size)
        if last is None:
            driver.commit()
            return results
        tail = pipe.keys_at_end(after, last)
        first_pair = [jsonable(v) for v in after] if after is not None else None
        last_pair = [jsonable(v) for v in last]
        cursor = position.advance(last_pair[0], [[jsonable(v) for v in keys] for keys in tail])
        feed = pipe.rows(after, last, row_no)
        start = pair_text(first_pair) if first_pair else "(start)"
        archived = RowsArchiveWriter("copy")
        try:
            # The batch streams into raw's COPY as the source sends it, and is archived as read (a rows archive).
            result = land_records(ctx.conn, ctx.registry, source,
                                  reference=batch_reference(settings, f"{start} … {pair_text(last_pair)}"),
                                  content_id=make_content_id(source.id, "watermark",
                                                             json.dumps(first_pair or pipe.start_params, default=str),
                                                             json.dumps(last_pair)),
                                  records=(), chunks=feed, archive_chunks=archived,
                                  cursor=cursor, data_date=ctx.data_date, warnings=warnings)
        finally:
            feed.close()  # a failed read must not leave the source connection inside its COPY
            archived.close()
        driver.commit()
        results.append(result)
        row_no += result.rows_received
        after = list(last)
