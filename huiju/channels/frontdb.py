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
    than as marker rows in ``raw``, because ``raw`` holds only what a department sent.

Limits of the watermark mode: rows whose watermark is NULL are never read (the query says so
explicitly); a source transaction that commits long after stamping its rows with a watermark
*below* the stored one can be overtaken (no look-back window yet); the keys at the stored
watermark are kept in the cursor, so a bulk update stamping a million rows with one
timestamp makes a large cursor (use ``exchange_flag`` or ``snapshot`` for such tables).

Speed: from a PostgreSQL database in UTF8 the watermark mode moves each batch with ``COPY`` on
both sides (the source renders raw's text form itself, no row passes through Python; a
thread reads the source's COPY so both databases work at once). From MySQL/MariaDB the
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

import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from huiju.channels.settings import FrontDbSettings, WatermarkSettings

if TYPE_CHECKING:
    import psycopg
    import sqlalchemy as sa
    from huiju_connectors.frontdb import Endpoint, SourceColumn

    from huiju.channels import CollectContext
    from huiju.landing import LandResult

log = logging.getLogger(__name__)


# --- helpers ------------------------------------------------------------------------------------

def endpoint_of(ctx: CollectContext) -> Endpoint:
    """The connector's endpoint from the source's resolved Connection (schema = database)."""
    from huiju_connectors.frontdb import Endpoint, Tls

    settings: FrontDbSettings = ctx.settings
    info = ctx.connection
    if info is None:
        from huiju_connectors.frontdb import FrontDbConfigError

        raise FrontDbConfigError(f"{ctx.source.id}: no Airflow Connection; set `connection:` in the source's config")
    extra = dict(info.extra or {})
    tls = settings.tls
    return Endpoint(dialect=settings.dialect, host=info.host, port=info.port, user=info.login, password=info.password,
                    database=info.schema,
                    tls=Tls(enabled=tls.enabled or bool(extra.get("tls")), verify=tls.verify,
                            ca_file=extra.get("ca_file", tls.ca_file), cert_file=tls.cert_file,
                            key_file=tls.key_file),
                    options={str(k): str(v) for k, v in (extra.get("options") or {}).items()},
                    timezone=settings.watermark.timezone if settings.watermark else "Asia/Shanghai")


def jsonable(value: Any) -> Any:
    """A key or watermark value as JSON that binds back to the same value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | float):
        return str(value)
    return str(value)


def watermark_value(value: Any, kind: str) -> Any:
    """A stored watermark back as the value to compare with (naive stays naive, aware stays aware)."""
    if value is None or kind == "integer":
        return value
    text = str(value)
    return dt.datetime.fromisoformat(text) if ("T" in text or ":" in text) else dt.date.fromisoformat(text)


def mojibake_reason(record: Mapping[str, object]) -> str | None:
    """A reason in Chinese if some text is GBK bytes read through a latin1 column, else None."""
    from huiju_connectors.frontdb import gbk_mojibake

    for name, value in record.items():
        # Cheap tests first: pure ASCII or real CJK text (beyond U+2122) cannot be latin1 mojibake.
        if type(value) is str and not value.isascii() and max(value) <= "\u2122" and gbk_mojibake(value):
            from huiju.rules import RULES

            return RULES["columns"].reason("mojibake", field=name)
    return None


def _where(ctx: CollectContext) -> str:
    settings: FrontDbSettings = ctx.settings
    table = f"{settings.table_schema}.{settings.table}" if settings.table_schema else settings.table
    return f"{ctx.source.id} ({settings.dialect} {table})"


def _reference(settings: FrontDbSettings, what: str) -> str:
    table = f"{settings.table_schema}.{settings.table}" if settings.table_schema else settings.table
    return f"{table} {what}"


def _pair(values: list) -> str:
    return "/".join(str(v) for v in values)


def _check_schema(ctx: CollectContext, columns: list[SourceColumn]) -> tuple[list[str], str | None]:
    """(warnings, error): drift against the configuration and against the schema seen last time."""
    from psycopg.types.json import Jsonb

    settings: FrontDbSettings = ctx.settings
    source = ctx.source
    names = [c.name for c in columns]
    if not columns:
        return [], f"{_where(ctx)}: the table or view does not exist or is not visible to this account"
    missing_tech = [c for c in settings.technical_columns if c not in names]
    if missing_tech:
        return [], f"{_where(ctx)}: column(s) the channel needs are missing: {', '.join(missing_tech)}"
    missing = [c for c in source.columns if c not in names]
    if missing:
        return [], (f"{_where(ctx)}: mapped column(s) missing at the source: {', '.join(missing)}; the batch is "
                    "held until the department restores them or the source's columns are reconfigured")
    warnings = []
    known = set(source.columns) | set(settings.technical_columns)
    new = [c for c in names if c not in known]
    if new:
        warnings.append(f"new column(s) at the source, kept in _extra: {', '.join(new)}")
    conn = ctx.conn
    with conn.transaction():
        row = conn.execute("select columns from ops.frontdb_schemas where source_id = %s", (source.id,)).fetchone()
        seen = {c.name: c.type for c in columns}
        if row is not None:
            before: dict[str, str] = row[0]
            for name, kind in seen.items():
                if name in before and before[name] != kind:
                    warnings.append(f"column {name} changed type from {before[name]} to {kind}; "
                                    "values still land as text as received")
        conn.execute("insert into ops.frontdb_schemas (source_id, columns) values (%s, %s)"
                     " on conflict (source_id) do update set columns = excluded.columns, seen_at = now()",
                     (source.id, Jsonb(seen)))
    for warning in warnings:
        log.warning("%s: %s", _where(ctx), warning)
    return warnings, None


def _fail(ctx: CollectContext, message: str) -> LandResult:
    """Record a batch that cannot be read as ``failed`` in the ledger, with the reason."""
    from huiju.landing import LandResult, _record_failure
    from huiju.ledger import make_content_id, make_load_id

    content_id = make_content_id(ctx.source.id, "frontdb-failed", message, str(ctx.data_date))
    load_id = make_load_id(ctx.source.id, content_id)
    settings: FrontDbSettings = ctx.settings
    reference = _reference(settings, "schema check")
    _record_failure(ctx.conn, ctx.source, ctx.registry.dataset_of(ctx.source), reference, content_id, 0, "",
                    load_id, message, ctx.data_date)
    log.error("%s", message)
    return LandResult(ctx.source.id, reference, load_id, "failed", error=message)


def _read_cursor(conn: psycopg.Connection, source_id: str) -> dict | None:
    from huiju.ledger import get_cursor

    with conn.transaction():  # closed at once: land_records must open a real transaction, not a savepoint
        return get_cursor(conn, source_id)


# --- modes ------------------------------------------------------------------------------------

class _Position:
    """The watermark mode's position: the greatest watermark landed and every key landed at it.

    Reading resumes at ``watermark >= stored`` and skips exactly the keys already landed at the
    stored watermark, so a row arriving later with that very watermark is read whatever its
    key. The keys at the watermark are saved with each batch (in ``keys_at_watermark``), in
    the transaction that lands it. Values are kept in their JSON form (:func:`jsonable`), which
    is how rows are compared with them.
    """

    def __init__(self, stored: dict | None, mark: WatermarkSettings):
        self.column, self.kind = mark.column, mark.type
        self.watermark: Any = None
        self.keys_at: list[list] = []
        if stored and stored.get("mode") == "watermark" and stored.get("column") == mark.column:
            if "keys_at_watermark" not in stored:
                raise ValueError("a watermark cursor without keys_at_watermark: run _upgrade_cursor first")
            self.watermark = stored["watermark"]
            self.keys_at = list(stored["keys_at_watermark"])

    def since(self) -> Any:
        """The stored watermark as a value to compare with (``>=``), or None to read from the start."""
        return None if self.watermark is None else watermark_value(self.watermark, self.kind)

    def landed_keys(self) -> set[str]:
        """The keys landed at the stored watermark, as JSON text."""
        return {json.dumps(k) for k in self.keys_at}

    def advance(self, watermark: Any, keys_at_last: list[list]) -> dict:
        """Move to the end of a batch (its last watermark, and its keys at it); the cursor to save."""
        if watermark == self.watermark:
            keys_at_last = self.keys_at + keys_at_last
        self.watermark, self.keys_at = watermark, keys_at_last
        return {"mode": "watermark", "column": self.column, "watermark": watermark, "keys": keys_at_last[-1],
                "keys_at_watermark": keys_at_last}


def _upgrade_cursor(ctx: CollectContext, src: sa.Connection, table: sa.TableClause) -> None:
    """Turn a watermark cursor saved as a (watermark, key) pair into the keys landed at its watermark.

    The pair meant "every row up to this one in (watermark, key) order was landed", so the keys
    landed at the watermark are the source's keys at it up to the pair's (a row that arrived
    later with a smaller key was missed by the pair and stays missed: nothing says it is not).
    Saved at once, in its own transaction: it describes the same landed rows.
    """
    import sqlalchemy as sa
    from huiju_connectors.frontdb import after_condition
    from psycopg.types.json import Jsonb

    settings: FrontDbSettings = ctx.settings
    mark = settings.watermark
    assert mark is not None
    stored = _read_cursor(ctx.conn, ctx.source.id)
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


def _keys_at_last(positions: list[list]) -> tuple[Any, list[list]]:
    """(last watermark, keys of the trailing rows sharing it) from ``[watermark, key…]`` lists in order."""
    last = positions[-1][0]
    keys = []
    for position in reversed(positions):
        if position[0] != last:
            break
        keys.append(position[1:])
    keys.reverse()
    return last, keys


def _collect_watermark(ctx: CollectContext, src: sa.Connection, table: sa.TableClause,
                       warnings: list[str]) -> list[LandResult]:
    from huiju_connectors.frontdb import stream, watermark_query

    from huiju.landing import land_records
    from huiju.ledger import make_content_id

    settings: FrontDbSettings = ctx.settings
    mark = settings.watermark
    assert mark is not None
    position = _Position(_read_cursor(ctx.conn, ctx.source.id), mark)
    query = watermark_query(table, mark.column, settings.key_columns, position.since())
    skip = position.landed_keys() or None
    start = position.watermark
    reject = mojibake_reason if settings.detect_mojibake else None
    results = []
    row_no = 1
    for names, batch in stream(src, query, settings.batch_size):
        wm_index = names.index(mark.column)
        key_index = [names.index(k) for k in settings.key_columns]
        rows = list(batch)
        if skip is not None:  # rows at the stored watermark come first: drop the ones already landed
            kept = []
            for n, r in enumerate(rows):
                if jsonable(r[wm_index]) != start:
                    kept += rows[n:]
                    skip = None
                    break
                if json.dumps([jsonable(r[i]) for i in key_index]) not in skip:
                    kept.append(r)
            rows = kept
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
        cursor = position.advance(*_keys_at_last(tail))
        content_id = make_content_id(ctx.source.id, "watermark", json.dumps(first_pair), json.dumps(last_pair),
                                     str(len(rows)))
        result = land_records(ctx.conn, ctx.registry, ctx.source,
                              reference=_reference(settings, f"{_pair(first_pair)} … {_pair(last_pair)}"),
                              content_id=content_id, records=(dict(zip(names, r, strict=True)) for r in rows),
                              cursor=cursor,
                              data_date=ctx.data_date, first_row_no=row_no, warnings=warnings,
                              quiet_extra=settings.technical_columns, reject=reject)
        results.append(result)
        row_no += len(rows)
    return results


def _mysql_copy_query(src: sa.Connection, settings: FrontDbSettings, mapped: list[str], since: bool) -> str | None:
    """The MySQL/MariaDB query rendering raw's COPY text, or None when the rows must pass through Python.

    Rows go through Python when a column cannot be rendered exactly (floating point, binary)
    or, with ``detect_mojibake``, when a text column is declared latin1: only the row path can
    recognise GBK bytes hidden there.
    """
    from huiju_connectors.frontdb import mysql_columns, mysql_copy_select

    mark = settings.watermark
    if settings.dialect != "mysql" or mark is None:
        return None
    columns = mysql_columns(src, settings.table, settings.table_schema)
    if settings.detect_mojibake and any(c.charset in ("latin1", "cp1252") for c in columns):
        return None
    return mysql_copy_select(settings.table, settings.table_schema, columns, mapped, mark.column,
                             settings.key_columns, since)


def _collect_watermark_mysql(ctx: CollectContext, src: sa.Connection, query: str,
                             position: _Position, warnings: list[str]) -> list[LandResult]:
    """The watermark mode for MySQL/MariaDB, the source rendering each row as a line of raw's COPY text.

    One unbuffered (server-side) cursor reads ``(line, position)`` pairs as bytes, in large
    blocks; the channel numbers the lines and hands each batch to ``land_records`` as COPY
    text, with the cursor of its last row, exactly as on the row path — but no value is
    converted or decoded in Python, which is what makes the row path slow.
    """
    import pymysql.cursors

    from huiju.landing import land_records
    from huiju.ledger import make_content_id

    settings: FrontDbSettings = ctx.settings
    source = ctx.source
    driver = src.connection.driver_connection
    since = position.since()
    skip = position.landed_keys() or None
    start = position.watermark
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
        cursor = position.advance(*_keys_at_last(tail))
        first = row_no

        def chunks() -> Iterator[bytes]:
            for at in range(0, len(rows), 10_000):
                yield b"".join([b"%d\t%s\n" % (n, line)
                                for n, (line, _) in enumerate(rows[at:at + 10_000], start=first + at)])

        result = land_records(ctx.conn, ctx.registry, source,
                              reference=_reference(settings, f"{_pair(first_pair)} … {_pair(last_pair)}"),
                              content_id=make_content_id(source.id, "watermark", json.dumps(first_pair),
                                                         json.dumps(last_pair), str(len(rows))),
                              records=(), chunks=chunks(), cursor=cursor, data_date=ctx.data_date,
                              warnings=warnings)
        results.append(result)
        row_no += len(rows)

    batch: list[tuple[bytes, bytes]] = []
    with driver.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(query, (since,) if since is not None else None)
        while block := cur.fetchmany(10_000):
            if skip is not None:  # rows at the stored watermark come first: drop the ones already landed
                kept = []
                for n, (line, pos) in enumerate(block):
                    at = json.loads(pos)
                    if at[0] != start:
                        kept += block[n:]
                        skip = None
                        break
                    if json.dumps(at[1:]) not in skip:
                        kept.append((line, pos))
                block = kept
            batch += block
            while len(batch) >= settings.batch_size:
                land(batch[:settings.batch_size])
                batch = batch[settings.batch_size:]
        if batch:
            land(batch)
    return results


def _copy_path_ok(src: sa.Connection, settings: FrontDbSettings) -> bool:
    """PostgreSQL → PostgreSQL can move batches as COPY text, with no row passing through Python.

    Only from a UTF8 database: there no column can be declared latin1, so the wrongly declared
    encoding the row path looks for cannot occur.
    """
    if settings.dialect != "postgresql" or settings.mode != "watermark":
        return False
    return src.exec_driver_sql("show server_encoding").scalar() == "UTF8"


def _collect_watermark_copy(ctx: CollectContext, src: sa.Connection, columns: list[SourceColumn],
                            warnings: list[str]) -> list[LandResult]:
    """The watermark mode for a PostgreSQL source, batch by batch with ``COPY`` on both sides.

    For each batch the pair of its last row is found first (an index range scan with OFFSET),
    then ``COPY (SELECT … WHERE pair > previous AND pair <= last) TO STDOUT`` on the source is
    piped into the raw table's ``COPY FROM STDIN``, the source itself rendering ``_row_no``,
    ``_extra`` and the mapped columns in raw's text form (timestamps as ISO 8601, as the row
    path writes them). The batch lands with its cursor in one transaction, as on the row path.
    """
    import psycopg
    from psycopg import sql as pgsql

    from huiju.landing import land_records
    from huiju.ledger import make_content_id

    settings: FrontDbSettings = ctx.settings
    mark = settings.watermark
    assert mark is not None
    source = ctx.source
    driver = src.connection.driver_connection  # the source's psycopg connection
    table = pgsql.Identifier(*([settings.table_schema] if settings.table_schema else []), settings.table)
    order = [mark.column, *settings.key_columns]
    pair = pgsql.SQL(", ").join(pgsql.Identifier(c) for c in order)
    placeholders = pgsql.SQL(", ").join(pgsql.Placeholder() * len(order))
    types = {c.name: c.type.upper() for c in columns}

    def as_text(name: str) -> pgsql.Composable:
        column = pgsql.Identifier(name)
        if types.get(name, "").startswith(("TEXT", "VARCHAR", "CHAR")):
            return column
        return pgsql.SQL("to_json({}) #>> '{{}}'").format(column)  # ISO 8601, like the row path

    extra_names = [c.name for c in columns if c.name not in source.columns]
    extra = pgsql.SQL("json_build_object({})::text").format(pgsql.SQL(", ").join(
        pgsql.SQL("{}, {}").format(pgsql.Literal(n), pgsql.Identifier(n)) for n in extra_names)) \
        if extra_names else pgsql.SQL("null")
    position = _Position(_read_cursor(ctx.conn, source.id), mark)
    new_cols = [n for n in extra_names if n not in settings.technical_columns]
    if new_cols:
        warnings = [*warnings, f"fields not in the configuration were kept in _extra: {', '.join(sorted(new_cols))}"]
    # Where the run starts: at the stored watermark, minus the keys already landed there.
    base = pgsql.SQL("where {m} is not null").format(m=pgsql.Identifier(mark.column))
    base_params: list = []
    if position.since() is not None:
        base = pgsql.SQL("{w} and {m} >= %s").format(w=base, m=pgsql.Identifier(mark.column))
        base_params = [position.since()]
        if position.keys_at:
            # The landed keys travel as text and are cast back to the key columns' own types.
            landed = pgsql.SQL("select {casts} from unnest({arrays}) as u({names})").format(
                casts=pgsql.SQL(", ").join(pgsql.SQL("{}::{}").format(pgsql.Identifier(f"k{i}"),
                                                                       pgsql.SQL(types.get(k, "text")))
                                           for i, k in enumerate(settings.key_columns)),
                arrays=pgsql.SQL(", ").join(pgsql.SQL("%s::text[]") for _ in settings.key_columns),
                names=pgsql.SQL(", ").join(pgsql.Identifier(f"k{i}") for i in range(len(settings.key_columns))))
            base = pgsql.SQL("{w} and not ({m} = %s and ({keys}) in ({landed}))").format(
                w=base, m=pgsql.Identifier(mark.column), landed=landed,
                keys=pgsql.SQL(", ").join(pgsql.Identifier(k) for k in settings.key_columns))
            base_params += [position.since(), *([str(k[i]) for k in position.keys_at]
                                                for i in range(len(settings.key_columns)))]
    # Each batch's statements (its end, its keys at the last watermark, its COPY) see one snapshot.
    driver.commit()
    driver.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    key_list = pgsql.SQL(", ").join(pgsql.Identifier(k) for k in settings.key_columns)
    results = []
    row_no = 1
    after: list | None = None  # the pair of the last row landed by this run
    while True:
        where, params = base, list(base_params)
        if after is not None:
            where = pgsql.SQL("{w} and ({pair}) > ({ph})").format(w=where, pair=pair, ph=placeholders)
            params += after
        last = driver.execute(pgsql.SQL("select {pair} from {t} {w} order by {pair} offset %s limit 1").format(
            pair=pair, t=table, w=where), [*params, settings.batch_size - 1]).fetchone()
        if last is None:
            last = driver.execute(pgsql.SQL("select {pair} from {t} {w} order by {desc} limit 1").format(
                pair=pair, t=table, w=where,
                desc=pgsql.SQL(", ").join(pgsql.SQL("{} desc").format(pgsql.Identifier(c)) for c in order)),
                params).fetchone()
        if last is None:
            driver.commit()
            return results
        tail = driver.execute(pgsql.SQL("select {keys} from {t} {w} and ({pair}) <= ({ph}) and {m} = %s"
                                        " order by {pair}").format(
            keys=key_list, t=table, w=where, pair=pair, ph=placeholders, m=pgsql.Identifier(mark.column)),
            [*params, *last, last[0]]).fetchall()
        query = pgsql.SQL(
            "copy (select row_number() over (order by {pair}) + {offset}, {extra}, {mapped} from {t} {w}"
            " and ({pair}) <= ({ph}) order by {pair}) to stdout").format(
            pair=pair, offset=pgsql.Literal(row_no - 1), extra=extra,
            mapped=pgsql.SQL(", ").join(as_text(c) for c in source.columns), t=table, w=where, ph=placeholders)
        first_pair = [jsonable(v) for v in after] if after is not None else None
        last_pair = [jsonable(v) for v in last]
        cursor = position.advance(last_pair[0], [[jsonable(v) for v in keys] for keys in tail])

        def chunks(query: pgsql.Composable = query, values: tuple = (*params, *last)) -> Iterator[bytes]:
            return _copy_out_in_thread(driver, query, values)

        feed = chunks()
        start = _pair(first_pair) if first_pair else "(start)"
        try:
            result = land_records(ctx.conn, ctx.registry, source,
                                  reference=_reference(settings, f"{start} … {_pair(last_pair)}"),
                                  content_id=make_content_id(source.id, "watermark",
                                                             json.dumps(first_pair or base_params, default=str),
                                                             json.dumps(last_pair)),
                                  records=(), chunks=feed, cursor=cursor, data_date=ctx.data_date,
                                  warnings=warnings)
        finally:
            feed.close()  # a failed landing must not leave the source connection inside its COPY
        driver.commit()
        results.append(result)
        row_no += result.rows_received
        after = list(last)


def _copy_out_in_thread(driver: psycopg.Connection, query: Any, values: tuple,
                        block_size: int = 1 << 18) -> Iterator[bytes]:
    """The rows of ``COPY … TO STDOUT`` on the source, read by a thread and handed over in blocks.

    psycopg delivers a COPY one row per call, which costs Python time per row; reading in a
    thread lets that overlap with the warehouse's COPY, so the two databases work side by side
    (the fastest pipe, ``COPY TO`` straight into ``COPY FROM``, gets that overlap by writing
    each row at once). At most 16 blocks wait in between, so memory stays flat. Closing the
    generator (a failed landing) stops the reader, which leaves the source's COPY cleanly.
    """
    import contextlib
    import queue
    import threading

    handoff: queue.Queue = queue.Queue(maxsize=16)
    stop = threading.Event()

    def read() -> None:
        try:
            with driver.cursor() as cur, cur.copy(query, values) as reader:
                block = bytearray()
                for row in reader:
                    block += row
                    if len(block) >= block_size:
                        if stop.is_set():
                            break
                        handoff.put(bytes(block))
                        block.clear()
                if block and not stop.is_set():
                    handoff.put(bytes(block))
            handoff.put(None)
        except BaseException as exc:  # handed to the consumer, which raises it
            handoff.put(exc)

    thread = threading.Thread(target=read, name="frontdb-copy-out", daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # a reader blocked on a full queue needs room to see the stop
            with contextlib.suppress(queue.Empty):
                handoff.get(timeout=0.1)
        thread.join()


def _acknowledge(src: sa.Connection, table: sa.TableClause, settings: FrontDbSettings, owed: dict) -> None:
    """Write "taken" (with the time) and "failed" (with the reason) back to the source, then commit."""
    from zoneinfo import ZoneInfo

    from huiju_connectors.frontdb import mark_rows

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


def _collect_exchange(ctx: CollectContext, src: sa.Connection, table: sa.TableClause,
                      warnings: list[str]) -> list[LandResult]:
    from huiju.landing import land_records
    from huiju.ledger import make_content_id, make_load_id, save_cursor

    settings: FrontDbSettings = ctx.settings
    flag = settings.exchange_flag
    assert flag is not None
    from huiju_connectors.frontdb import flag_query

    def settle(owed: dict) -> None:
        _acknowledge(src, table, settings, owed)
        with ctx.conn.transaction():
            save_cursor(ctx.conn, ctx.source.id, {"mode": "exchange_flag", "owed": None}, None)

    stored = _read_cursor(ctx.conn, ctx.source.id)
    if stored and stored.get("owed"):
        # The last run landed a batch and died before telling the department: finish that first.
        log.info("%s: completing the write-back of %s", _where(ctx), stored["owed"].get("load_id"))
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
            raise RuntimeError(f"{_where(ctx)}: the rows just acknowledged are still pending; "
                               f"is {flag.column} writable by this account?")
        previous = keys
        reasons = [mojibake_reason(r) if settings.detect_mojibake else None for r in records]
        rejected = {id(r): reason for r, reason in zip(records, reasons, strict=True) if reason}
        owed = {"taken": [k for k, reason in zip(keys, reasons, strict=True) if not reason],
                "failed": [[k, reason] for k, reason in zip(keys, reasons, strict=True) if reason]}
        content_id = make_content_id(ctx.source.id, "exchange_flag", json.dumps(keys))
        owed["load_id"] = make_load_id(ctx.source.id, content_id)
        result = land_records(ctx.conn, ctx.registry, ctx.source,
                              reference=_reference(settings, f"{flag.column}={flag.pending} {keys[0]} … {keys[-1]}"),
                              content_id=content_id, records=records,
                              cursor={"mode": "exchange_flag", "owed": owed}, data_date=ctx.data_date,
                              first_row_no=row_no, warnings=warnings, quiet_extra=settings.technical_columns,
                              reject=lambda r, found=rejected: found.get(id(r)))
        results.append(result)
        row_no += len(rows)
        settle(owed)
    return results


def _collect_snapshot(ctx: CollectContext, src: sa.Connection, table: sa.TableClause,
                      warnings: list[str]) -> list[LandResult]:
    from huiju_connectors.frontdb import snapshot_query, stream

    from huiju.landing import land_records
    from huiju.ledger import make_content_id

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
        result = land_records(conn, ctx.registry, ctx.source,
                              reference=_reference(settings, f"snapshot {keys[0]} … {keys[-1]}"),
                              content_id=content_id, records=(dict(zip(names, r, strict=True)) for r in rows),
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
        deleted = conn.execute(
            "insert into ops.deletions (source_id, key, data_date)"
            " select k.source_id, k.key, %s from ops.snapshot_keys k where k.source_id = %s"
            " and not exists (select 1 from ops.snapshot_seen s where s.source_id = k.source_id and s.key = k.key)",
            (ctx.data_date, source_id)).rowcount
        conn.execute("delete from ops.snapshot_keys where source_id = %s", (source_id,))
        conn.execute("insert into ops.snapshot_keys (source_id, key) select source_id, key from ops.snapshot_seen"
                     " where source_id = %s on conflict do nothing", (source_id,))
        conn.execute("delete from ops.snapshot_seen where source_id = %s", (source_id,))
    if deleted:
        log.warning("%s: %d row(s) deleted at the source since the last snapshot (see ops.deletions)",
                    _where(ctx), deleted)
    return results


_MODES = {"watermark": _collect_watermark, "exchange_flag": _collect_exchange, "snapshot": _collect_snapshot}


def collect(ctx: CollectContext) -> list[LandResult]:
    """Read what is new in the department's table and land it (see the module docstring)."""
    import sqlalchemy as sa
    from huiju_connectors.frontdb import create_source_engine, describe_table, map_error, source_table

    from huiju.landing import ensure_raw_table

    settings: FrontDbSettings = ctx.settings
    ensure_raw_table(ctx.conn, ctx.registry.dataset_of(ctx.source))
    engine = create_source_engine(endpoint_of(ctx))
    try:
        with engine.connect() as src:
            columns = describe_table(src, settings.table, settings.table_schema)
            src.commit()
            warnings, error = _check_schema(ctx, columns)
            if error is not None:
                return [_fail(ctx, error)]
            table = source_table(settings.table, [c.name for c in columns], settings.table_schema)
            if settings.mode == "watermark":
                _upgrade_cursor(ctx, src, table)
            if _copy_path_ok(src, settings):
                return _collect_watermark_copy(ctx, src, columns, warnings)
            if settings.dialect == "mysql" and settings.mode == "watermark":
                assert settings.watermark is not None
                position = _Position(_read_cursor(ctx.conn, ctx.source.id), settings.watermark)
                query = _mysql_copy_query(src, settings, list(ctx.source.columns),
                                          since=position.since() is not None)
                if query is not None:
                    return _collect_watermark_mysql(ctx, src, query, position, warnings)
            return _MODES[settings.mode](ctx, src, table, warnings)
    except sa.exc.SQLAlchemyError as exc:
        raise map_error(exc, _where(ctx)) from exc
    except Exception as exc:
        if type(exc).__module__.startswith("pymysql."):  # the rendered MySQL path reads through the driver
            raise map_error(exc, _where(ctx)) from exc
        raise
    finally:
        engine.dispose()

