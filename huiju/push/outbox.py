"""What is due at a push target, computed from the warehouse into the outbox (``ops.push_outbox``).

For each relation a target takes (:mod:`huiju.push.targets`) the records published since the
target's cursor (``ops.push_cursors``: the newest row the last run read, and when it read, so a batch
committed after it read is not missed: :func:`read_since`) are turned into exactly the payload the
target receives: its item codes, sensitive fields masked unless the target is entitled to them in clear.
The payload's content hash is compared with what the target was last sent (``ops.push_records``):

* a record never sent, or whose payload changed (a correction) → an ``upsert``;
* a record sent and no longer publishable (公示截止期 passed, a licence expired) → a ``withdraw``,
  also when nothing was published about it (the day passed): ``publish_until`` is kept per record;
* a record sent that is gone from the relation (deleted at the source) → a ``withdraw``;
* a record of the province's backflow (origin 省回流) is never due at a target with
  ``forward_backflow: false`` (the province it came from).

**Rendered in the warehouse.** Where the warehouse can render a relation's payloads byte for byte as
:func:`canonical_json` does (text, integers, amounts, dates and booleans, ID numbers masked; not free text
masked by :func:`~huiju.masking.mask_text`, floats or timestamps), each payload is rendered, hashed (sha256,
the hash a record sent before has) and compared there, and the payloads, push states and outbox rows are
written by set-based statements: no row leaves the warehouse (:meth:`PayloadBuilder.sql_payload`). Other
relations are read into Python and rendered row by row, to the same bytes.

Incremental: only rows published since the cursor are read, joined in the same query with what the
target was last sent of each (``ops.push_records``: content hash, and the row's publication time when it
was rendered, migration 182); a row read again with nothing new is left out before rendering. A change in
how the target renders a relation (``ops.push_cursors.rendering``) reads it whole once.

Everything runs in one transaction under the target's advisory lock; the outbox rows are written in
bulk (COPY, or one insert from the rows rendered in the warehouse) — in a push run once each, already in
their batches (``batched``; see :func:`compute_due`), each batch's idempotency key made at the end from the
rows it holds (:meth:`Batches.write`).
The payloads themselves are not in ``ops`` (which the landing, validation, the transformation and
the stewards' dashboard read): a payload may hold an ID number in clear, so each is kept once, by its
content hash, in ``push_private.payloads``, which only the push component's role reads (migration 181).
An older ``due`` row of a record that has a newer one is ``superseded`` (never sent).
Each row carries the 双公示 deadline (decision date + 7 working days, :mod:`huiju.workdays`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from huiju.masking import mask_id_number, mask_text
from huiju.monitoring.ledger import today as business_day
from huiju.push.targets import ORIGIN_BACKFLOW, PushRelation, Target
from huiju.registry import Registry
from huiju.workdays import CalendarGap, work_calendar

log = logging.getLogger(__name__)

#: Records read per round trip; also how many known states are looked up at once.
CHUNK = 5000
#: How long a build may take from stamping its rows' publication time to committing them: rows committed after
#: the last run read were published at most this long before it, and are read again (see :func:`read_since`).
CURSOR_OVERLAP = timedelta(minutes=30)
OUTBOX_COLUMNS = ("target", "record_key", "relation", "action", "content_hash", "department", "load_id",
                  "source_row_no", "decision_date", "deadline_date")


@dataclass
class DueReport:
    """What one :func:`compute_due` run queued for a target."""

    target: str
    upserts: int = 0
    withdrawals: int = 0
    unchanged: int = 0
    batches: int = 0  # batches cut as the rows were queued (a push run: ``batched``)

    @property
    def queued(self) -> int:
        """Rows added to the outbox."""
        return self.upserts + self.withdrawals


#: Values that go on the wire as they are (checked by exact type first: most values are strings).
_AS_IS = frozenset({str, int, float, bool, type(None)})


def wire_value(value: Any) -> Any:
    """A column's value as it goes on the wire: dates in ISO form, amounts without trailing zeros, the rest as is."""
    if type(value) in _AS_IS:
        return value
    if isinstance(value, date):  # a datetime is a date too
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 1.50 and 1.5 are one amount: one hash
    return value


#: One encoder for every payload (json.dumps with these options would build one per call).
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def canonical_json(record: dict[str, Any]) -> str:
    """A wire record's canonical JSON (keys sorted, no spaces): what is stored, hashed and sent."""
    return _CANONICAL.encode(record)


def content_hash(record: dict[str, Any], text: str | None = None) -> str:
    """sha256 of the canonical JSON of a wire record (``text``, when already rendered): equal payloads, equal hashes."""
    return text_hash(text if text is not None else canonical_json(record))


def text_hash(text: str) -> str:
    """sha256 of a rendered payload's UTF-8 bytes: its key in ``push_private.payloads``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def batch_id_of(target: str, batch_no: int) -> str:
    """The deterministic id of batch ``batch_no`` of ``target``."""
    return f"{target}-{batch_no:08d}"


def idempotency_key(batch_id: str, hashes: Sequence[str]) -> str:
    """The key every send of one batch carries: its id and its records' content, hashed."""
    digest = hashlib.sha256(batch_id.encode())
    for value in hashes:
        digest.update(b"|" + value.encode())
    return digest.hexdigest()[:40]


@dataclass
class Batches:
    """The target's batches, cut in outbox order as rows are queued: ``batch_size`` rows each, numbered after
    the target's last (``ops.push_batches``). Only counted while rows are queued: each batch's row, with its
    idempotency key, is written at the end from the outbox rows it holds (:meth:`write`)."""

    target: str
    size: int
    first_no: int  # the last batch number before these
    queued: int = 0  # rows put in batches so far

    def add(self) -> str:
        """Put a row in the open batch; the batch's id."""
        self.queued += 1
        return batch_id_of(self.target, self.first_no + 1 + (self.queued - 1) // self.size)

    def reserve(self, rows: int) -> int:
        """Put ``rows`` rows in batches at once (their batch numbers worked out by the caller); how many came before."""
        before = self.queued
        self.queued += rows
        return before

    @property
    def last_no(self) -> int:
        """The number of the last batch cut (``first_no`` when none)."""
        return self.first_no + -(-self.queued // self.size)

    def write(self, conn: psycopg.Connection) -> None:
        """Write the batches cut (``ops.push_batches``): each with its rows' count and the idempotency key of its id
        and their content hashes in outbox order (:func:`idempotency_key`, worked out in the warehouse)."""
        numbers = list(range(self.first_no + 1, self.last_no + 1))
        if not numbers:
            return
        conn.execute(
            "insert into ops.push_batches (batch_id, target, batch_no, idempotency_key, records)"
            " select o.batch_id, %s, b.batch_no, left(encode(sha256(convert_to(o.batch_id"
            " || string_agg('|' || o.content_hash, '' order by o.outbox_id), 'UTF8')), 'hex'), 40), count(*)"
            " from ops.push_outbox o join unnest(%s::text[], %s::bigint[]) as b (batch_id, batch_no)"
            " on b.batch_id = o.batch_id group by o.batch_id, b.batch_no",
            (self.target, [batch_id_of(self.target, n) for n in numbers], numbers))


def copy_batches(conn: psycopg.Connection, batches: Sequence[tuple[Any, ...]]) -> None:
    """Write batches ``(batch_id, target, batch_no, parent_batch_id, idempotency_key, records)`` (COPY)."""
    with conn.cursor().copy("copy ops.push_batches (batch_id, target, batch_no, parent_batch_id, idempotency_key,"
                            " records) from stdin") as copy:
        for row in batches:
            copy.write_row(row)


#: What :meth:`str.strip` removes (``str.isspace``), for the ID number's masking in SQL to trim the same
#: (``tests/unit/push`` checks it against Python's own).
STRIP_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
#: mask_id_number in SQL: region and last four kept; eight characters or fewer all hidden.
_SQL_MASKED_ID_NUMBER = sql.SQL(
    "case when length(btrim({value}, {whitespace})) <= 8 then repeat('*', length(btrim({value}, {whitespace})))"
    " else left(btrim({value}, {whitespace}), 6) || repeat('*', length(btrim({value}, {whitespace})) - 10)"
    " || right(btrim({value}, {whitespace}), 4) end")
_SQL_TEXT = frozenset({"text", "character varying"})
_SQL_INTEGERS = frozenset({"smallint", "integer", "bigint"})
#: Key columns whose ``::text`` is Python's ``str()`` of the value.
_SQL_KEYS = _SQL_TEXT | _SQL_INTEGERS
#: Each PostgreSQL type's JSON as :func:`wire_value` and :func:`canonical_json` write its Python value: strings
#: escaped as json escapes them without ensure_ascii (PostgreSQL's to_json escapes the same characters, the same
#: way), amounts as strings without trailing zeros (trim_scale: Decimal.normalize), dates in ISO form. Floats and
#: timestamps are left to Python (their text forms differ).
_SQL_VALUES = {
    **{name: sql.SQL("to_json({})::text") for name in _SQL_TEXT},
    **{name: sql.SQL("{}::text") for name in _SQL_INTEGERS},
    "numeric": sql.SQL("'\"' || trim_scale({})::text || '\"'"),
    "date": sql.SQL("to_json({})::text"),
    "boolean": sql.SQL("case {} when true then 'true' when false then 'false' end"),
}


#: An amount Decimal.normalize leaves whole: at most 28 significant digits (the default context's precision,
#: beyond which it rounds). Counted generously (trailing zeros of a whole number too): a row it is false for
#: makes the warehouse leave the relation's rendering to Python.
_SQL_NUMERIC_EXACT = sql.SQL("coalesce(length(ltrim(replace(trim_scale(abs({}))::text, '.', ''), '0')) <= 28, true)")


class WarehouseRendering(NamedTuple):
    """How the warehouse renders a relation's payloads (:meth:`PayloadBuilder.sql_payload`), as SQL over ``r``."""

    payload: sql.Composable  # the canonical JSON
    exact: sql.Composable  # true when the row's payload is rendered exactly as Python would (else: Python renders)


@dataclass(frozen=True)
class PayloadBuilder:
    """Turns a relation's row into the target's wire record (item codes, masking)."""

    relation: PushRelation
    masked: dict[str, str]  # column → how it is masked for this target ("id_number" or "text")

    def record_id(self, key: Any) -> str:
        """The record's id on the wire: ``<item set>:<natural key>``."""
        return f"{self.relation.item_set}:{key}"

    @cached_property
    def _items(self) -> tuple[tuple[str, str, str | None], ...]:
        """(item code, column, how it is masked or None) of each field, worked out once."""
        return tuple((code, column, self.masked.get(column)) for code, column in self.relation.fields.items())

    def upsert(self, row: dict[str, Any]) -> dict[str, Any]:
        """The wire record of a publishable row."""
        data = {}
        for code, column, how in self._items:
            value = row[column]
            if how is not None and value is not None:
                value = mask_id_number(str(value)) if how == "id_number" else mask_text(str(value))
            data[code] = wire_value(value)
        return {"record_id": f"{self.relation.item_set}:{row[self.relation.key]}", "action": "upsert",
                "item_set": self.relation.item_set, "data": data}

    def rendering(self, target: Target) -> str:
        """A hash of how ``target`` gets this relation (item codes, masking, key, the backflow rule): when it
        changes, every record's payload may have changed with it."""
        return text_hash(canonical_json({"relation": self.relation.model_dump(mode="json"), "masked": self.masked,
                                         "forward_backflow": target.forward_backflow}))

    def sql_payload(self, types: dict[str, str]) -> WarehouseRendering | None:
        """The upsert's canonical JSON rendered by the warehouse from the relation's row ``r``: byte for byte what
        :meth:`upsert` and :func:`canonical_json` make of it (keys sorted, values as :func:`wire_value` writes
        them, ID numbers masked as :func:`~huiju.masking.mask_id_number` masks them), so its content hash is
        the one a record sent before has. None when a column's type (``types``: column → PostgreSQL type) or
        its masking has no exact rendering here (the rows are then rendered in Python).
        """
        if types.get(self.relation.key) not in _SQL_KEYS:
            return None
        exact: list[sql.Composable] = [sql.SQL("true")]
        parts: list[sql.Composable] = [sql.Literal('{"action":"upsert","data":{')]
        for number, (code, column) in enumerate(sorted(self.relation.fields.items())):
            value = sql.SQL("r.{}").format(sql.Identifier(column))
            how = self.masked.get(column)
            if how is not None:
                if how != "id_number" or types.get(column) not in _SQL_TEXT:
                    return None  # free text masked: huiju.masking.mask_text has no byte-identical SQL twin
                value = _SQL_MASKED_ID_NUMBER.format(value=value, whitespace=sql.Literal(STRIP_WHITESPACE))
                rendered = sql.SQL("to_json({})::text").format(value)
            elif (template := _SQL_VALUES.get(types.get(column, ""))) is None:
                return None
            else:
                rendered = template.format(value)
                if types[column] == "numeric":
                    exact.append(_SQL_NUMERIC_EXACT.format(value))
            parts += [sql.Literal(("," if number else "") + json.dumps(code) + ":"),
                      sql.SQL("coalesce({}, 'null')").format(rendered)]
        parts += [sql.Literal('},"item_set":' + json.dumps(self.relation.item_set, ensure_ascii=False)
                              + ',"record_id":'),
                  sql.SQL("to_json({} || r.{}::text)::text").format(sql.Literal(self.record_id("")),
                                                                   sql.Identifier(self.relation.key)),
                  sql.Literal("}")]
        return WarehouseRendering(sql.SQL(" || ").join(parts), sql.SQL(" and ").join(exact))

    def withdraw(self, key: Any) -> dict[str, Any]:
        """The wire record withdrawing ``key`` (only its key item)."""
        key_code = next(code for code, column in self.relation.fields.items() if column == self.relation.key)
        return {"record_id": self.record_id(key), "action": "withdraw", "item_set": self.relation.item_set,
                "data": {key_code: wire_value(key)}}


def payload_builder(registry: Registry, target: Target, relation: PushRelation) -> PayloadBuilder:
    """The builder for ``relation`` at ``target``: its sensitive fields masked unless in ``clear_fields``."""
    dataset = registry.datasets[relation.dataset]
    masked = {f.name: ("id_number" if "id_number" in f.rules else "text") for f in dataset.fields
              if f.sensitive and f.name not in target.clear_fields and f.name in relation.fields.values()}
    return PayloadBuilder(relation, masked)


class _Deadlines(dict[date, date | None]):
    """The 双公示 deadline of each decision date, counted once per run on the platform's calendar."""

    def __init__(self, working_days: int) -> None:
        super().__init__()
        self.working_days = working_days
        self.calendar = work_calendar()

    def __missing__(self, decided: date) -> date | None:
        try:
            deadline: date | None = self.calendar.add_working_days(decided, self.working_days)
        except CalendarGap:
            deadline = None  # never guessed: the monitoring run names the missing year
        self[decided] = deadline
        return deadline


def _columns(relation: PushRelation) -> list[str]:
    wanted = [relation.key, *relation.fields.values(), relation.publishable_column, relation.publish_until_column,
              relation.changed_column, relation.decision_date_column, relation.department_column, "load_id",
              "source_row_no"]
    return list(dict.fromkeys(c for c in wanted if c))


def _without_backflow(relation: PushRelation, target: Target, conditions: list[sql.Composable],
                      params: list[Any]) -> tuple[list[sql.Composable], list[Any]]:
    """``conditions`` and ``params`` with the province's backflow (省回流) kept out, for a target not forwarding it."""
    if relation.origin_column and not target.forward_backflow:
        return ([*conditions, sql.SQL("coalesce(r.{}, '') <> %s").format(sql.Identifier(relation.origin_column))],
                [*params, ORIGIN_BACKFLOW])
    return conditions, params


def _read(relation: PushRelation, target: Target, item_set_prefix: str, since: datetime | None,
          select: sql.Composable) -> tuple[sql.Composable, list[Any]]:
    """The query reading the relation's rows published since ``since`` (all when None), each joined with what the
    target was last sent of it (``s``, ``ops.push_records``: no row when never), ``select`` of ``r`` and ``s``.

    Since ``since``, a row whose changed column is the one recorded when it was last rendered is left out
    in the query (read again by the cursor's overlap, nothing new): its payload would be the same. Not
    left out: a row no longer publishable (a view judging 公示截止期 by today's date changes without a
    new version), and a record the target holds withdrawn.
    """
    schema, table = relation.relation.split(".", 1)
    conditions = []
    params: list[Any] = [target.target, item_set_prefix]
    if since is not None:
        changed = sql.Identifier(relation.changed_column)
        conditions.append(sql.SQL("r.{} > %s").format(changed))
        unchanged = sql.SQL("(s.withdrawn or s.changed_at is distinct from r.{}{})").format(
            changed, sql.SQL(" or r.{} is false").format(sql.Identifier(relation.publishable_column))
            if relation.publishable_column else sql.SQL(""))
        conditions.append(unchanged)
        params.append(since)
    conditions, params = _without_backflow(relation, target, conditions, params)
    query = sql.SQL(
        "select {select} from {table} r left join ops.push_records s"
        " on s.target = %s and s.record_key = %s || r.{key}::text{where}").format(
        select=select, table=sql.Identifier(schema, table), key=sql.Identifier(relation.key),
        where=sql.SQL(" where ") + sql.SQL(" and ").join(conditions) if conditions else sql.SQL(""))
    return query, params


def _rows(conn: psycopg.Connection, relation: PushRelation, target: Target, item_set_prefix: str,
          since: datetime | None) -> Iterator[list[tuple[dict[str, Any], _State | None]]]:
    """The relation's rows published since ``since`` (all when None; see :func:`_read`), in chunks, each with what
    the target was last sent of it (None when never): one streaming join, no look-up per chunk."""
    columns = _columns(relation)
    query, params = _read(relation, target, item_set_prefix, since, sql.SQL(", ").join(
        [*(sql.SQL("r.{}").format(sql.Identifier(c)) for c in columns),
         sql.SQL("s.content_hash, s.withdrawn, s.changed_at")]))
    width = len(columns)
    with conn.cursor(name=f"push_{target.target}_{relation.name}") as cur:
        cur.itersize = CHUNK
        cur.execute(query, params)
        while True:
            chunk = cur.fetchmany(CHUNK)
            if not chunk:
                return
            yield [(dict(zip(columns, row[:width], strict=True)),
                    None if row[width] is None else _State(*row[width:])) for row in chunk]


def column_types(conn: psycopg.Connection, relation: str) -> dict[str, str]:
    """Each column of ``relation`` (``schema.table``, a table or a view) and its PostgreSQL type's name."""
    return dict(conn.execute("select attname::text, atttypid::regtype::text from pg_attribute"
                             " where attrelid = %s::regclass and attnum > 0 and not attisdropped",
                             (relation,)).fetchall())


def _column_or(relation: PushRelation, column: str | None, otherwise: str) -> sql.Composable:
    return sql.SQL("r.{}").format(sql.Identifier(column)) if column else sql.SQL(otherwise)


def _queue_in_python(conn: psycopg.Connection, target: Target, relation: PushRelation, builder: PayloadBuilder,
                     since: datetime | None, newest: datetime | None, deadlines: _Deadlines, batches: Batches | None,
                     report: DueReport) -> datetime | None:
    """Queue the relation's new, changed and no longer publishable records, its rows read and rendered in Python
    chunk by chunk (:meth:`PayloadBuilder.upsert`); the newest changed time read (or ``newest``)."""
    for chunk in _rows(conn, relation, target, builder.record_id(""), since):
        pending = _Pending()
        withdrawn_keys = []
        for row, state in chunk:
            changed_at = row[relation.changed_column]
            if changed_at is not None and (newest is None or changed_at > newest):
                newest = changed_at
            if relation.publishable_column and row[relation.publishable_column] is False:
                if state is not None and not state.withdrawn:
                    withdrawn_keys.append(str(row[relation.key]))
                continue
            record = builder.upsert(row)
            text = canonical_json(record)
            digest = text_hash(text)
            record_id = record["record_id"]
            publish_until = row.get(relation.publish_until_column) if relation.publish_until_column else None
            if state is not None and state.content_hash == digest and not state.withdrawn:
                report.unchanged += 1
                if state.changed_at != changed_at:  # so the next run leaves it out in the query
                    pending.states.append((target.target, record_id, relation.name, str(row[relation.key]),
                                           digest, False, publish_until, changed_at))
                continue
            if state is not None:
                pending.superseding.append(record_id)
            decided = row.get(relation.decision_date_column) if relation.decision_date_column else None
            deadline = deadlines[decided] if isinstance(decided, date) else None
            pending.payloads.append((digest, text))
            pending.outbox.append((
                target.target, record_id, relation.name, "upsert", digest,
                row.get(relation.department_column) if relation.department_column else None,
                row.get("load_id"), row.get("source_row_no"), decided, deadline))
            (pending.states if state is not None else pending.new_states).append((
                target.target, record_id, relation.name, str(row[relation.key]), digest, False, publish_until,
                changed_at))
        report.upserts += len(pending.outbox)
        report.withdrawals += _add_withdrawals(pending, target, relation, builder, withdrawn_keys)
        _write(conn, target.target, pending, batches)
    return newest


def _warehouse_payload(conn: psycopg.Connection, relation: PushRelation,
                       builder: PayloadBuilder) -> WarehouseRendering | None:
    """How the warehouse renders the relation's payloads (:meth:`PayloadBuilder.sql_payload`), when it can render
    them exactly and the columns the outbox keeps have the types it writes; None otherwise."""
    types = column_types(conn, relation.relation)
    dates = all(not column or types.get(column) == "date"
                for column in (relation.decision_date_column, relation.publish_until_column))
    rendering = builder.sql_payload(types) if dates and {"load_id", "source_row_no"} <= types.keys() else None
    if rendering is None:
        log.info("push: %s rendered in Python (a column's type or masking has no exact rendering in the warehouse)",
                 relation.relation)
    return rendering


def _queue_in_warehouse(conn: psycopg.Connection, target: Target, relation: PushRelation, builder: PayloadBuilder,
                        since: datetime | None, newest: datetime | None, deadlines: _Deadlines,
                        batches: Batches | None, report: DueReport, *,
                        rendering: WarehouseRendering) -> datetime | None:
    """Queue the relation's new and changed records without a row leaving the warehouse: each payload rendered
    (``payload``, :meth:`PayloadBuilder.sql_payload`) and hashed there, compared with what the target was last
    sent, and written with its push state and its outbox row by set-based statements. The same decisions as
    :func:`compute_due`'s loop over rows read into Python (the relations whose rendering the warehouse has
    no exact twin for still take :func:`_queue_in_python`). Returns the newest changed time read (or ``newest``).
    """
    publishable = _column_or(relation, relation.publishable_column, "true")
    select = sql.SQL(
        "r.{key}::text as natural_key, {prefix} || r.{key}::text as record_key, r.{changed} as changed_at,"
        " {publishable} as publishable, {publish_until} as publish_until, {decided} as decision_date,"
        " {department} as department, r.load_id, r.source_row_no, s.record_key is not null as known,"
        " s.content_hash as old_hash, s.withdrawn as old_withdrawn, s.changed_at as old_changed_at,"
        " case when {publishable} is false then null else {payload} end as payload, {exact} as exact").format(
        key=sql.Identifier(relation.key), prefix=sql.Literal(builder.record_id("")),
        changed=sql.Identifier(relation.changed_column), publishable=publishable,
        publish_until=_column_or(relation, relation.publish_until_column, "null::date"),
        decided=_column_or(relation, relation.decision_date_column, "null::date"),
        department=_column_or(relation, relation.department_column, "null::text"), payload=rendering.payload,
        exact=rendering.exact)
    query, params = _read(relation, target, builder.record_id(""), since, select)
    conn.execute("drop table if exists push_read")
    # Hashed once per row; due: publishable and never sent, withdrawn there, or changed (its hash differs).
    # Bound client-side: CREATE TABLE AS takes no server-side parameters.
    psycopg.ClientCursor(conn).execute(sql.SQL(
        "create temp table push_read on commit drop as select *, payload is not null and not coalesce(known"
        " and old_hash = content_hash and not old_withdrawn, false) as due from (select *,"
        " encode(sha256(convert_to(payload, 'UTF8')), 'hex') as content_hash from ({query}) as q) as h").format(
        query=query), params)
    (read_newest, unchanged, withdrawn, exact, due, due_known, restamped, decided) = conn.execute(
        "select max(changed_at), count(*) filter (where payload is not null and not due),"
        " array_agg(natural_key order by natural_key) filter (where publishable is false and known and not"
        " old_withdrawn), coalesce(bool_and(exact), true), count(*) filter (where due),"
        " count(*) filter (where due and known), count(*) filter (where payload is not null and not due and known"
        " and old_changed_at is distinct from changed_at),"
        " array_agg(distinct decision_date) filter (where due and decision_date is not null) from push_read").fetchone()
    if not exact:  # an amount Decimal would round: nothing written yet, the relation is rendered in Python
        conn.execute("drop table push_read")
        log.info("push %s: %s holds an amount of over 28 digits; rendered in Python", target.target, relation.name)
        return _queue_in_python(conn, target, relation, builder, since, newest, deadlines, batches, report)
    report.unchanged += unchanged
    decided = decided or []
    if due_known or restamped:  # planned for what the table holds (a day's few rows found by key, not by a scan)
        conn.execute("analyze push_read")
    if due_known:
        # A record queued again before its older row went out: only the newest (about to be written) is sent.
        conn.execute("update ops.push_outbox o set state = 'superseded' from push_read r where r.due and r.known"
                     " and o.target = %s and o.record_key = r.record_key and o.state = 'due'", (target.target,))
    if due_known or restamped:
        # The new state of each record the target has one for: a changed payload, or the version last rendered.
        conn.execute("update ops.push_records s set relation = %s, content_hash = r.content_hash, withdrawn = false,"
                     " publish_until = r.publish_until, changed_at = r.changed_at, updated_at = now()"
                     " from push_read r where r.known and r.payload is not null and (r.due or r.old_changed_at"
                     " is distinct from r.changed_at) and s.target = %s and s.record_key = r.record_key",
                     (relation.name, target.target))
    if due == 0:
        return _withdraw_unpublishable(conn, target, relation, builder, withdrawn, batches, report, read_newest,
                                       newest)
    if due > due_known:
        conn.execute("insert into ops.push_records (target, record_key, relation, natural_key, content_hash,"
                     " withdrawn, publish_until, changed_at) select %s, record_key, %s, natural_key, content_hash,"
                     " false, publish_until, changed_at from push_read where due and not known",
                     (target.target, relation.name))
    conn.execute("insert into push_private.payloads (content_hash, payload) select content_hash, payload"
                 " from push_read where due on conflict (content_hash) do nothing")
    # Outbox order is batch order: the n-th row queued in this run goes in the run's batch n // batch_size.
    before = batches.reserve(due) if batches is not None else 0
    batch = (sql.SQL(", {target} || '-' || lpad(n::text, greatest(8, length(n::text)), '0'), 'batched'").format(
        target=sql.Literal(target.target)) if batches is not None else sql.SQL(""))
    conn.execute(sql.SQL(
        "insert into ops.push_outbox (target, record_key, relation, action, content_hash, department, load_id,"
        " source_row_no, decision_date, deadline_date{batch_columns}) select %s, r.record_key, %s, 'upsert',"
        " r.content_hash, r.department, r.load_id, r.source_row_no, r.decision_date, d.deadline{batch}"
        " from (select *, %s::bigint + 1 + (%s::bigint + row_number() over (order by record_key collate \"C\") - 1)"
        " / %s::bigint as n from push_read where due) as r"
        " left join unnest(%s::date[], %s::date[]) as d (decided, deadline) on d.decided = r.decision_date"
        " order by r.n, r.record_key collate \"C\"").format(
        batch_columns=sql.SQL(", batch_id, state") if batches is not None else sql.SQL(""), batch=batch),
        (target.target, relation.name, batches.first_no if batches is not None else 0, before,
         batches.size if batches is not None else 1, decided, [deadlines[d] for d in decided]))
    report.upserts += due
    return _withdraw_unpublishable(conn, target, relation, builder, withdrawn, batches, report, read_newest, newest)


def _withdraw_unpublishable(conn: psycopg.Connection, target: Target, relation: PushRelation,
                            builder: PayloadBuilder, keys: list[str] | None, batches: Batches | None,
                            report: DueReport, read_newest: datetime | None,
                            newest: datetime | None) -> datetime | None:
    """Queue the withdrawal of the records the target holds that are no longer publishable (``keys``), after the
    relation's upserts; the newer of the newest changed times (``read_newest`` read now, ``newest`` before)."""
    pending = _Pending()
    report.withdrawals += _add_withdrawals(pending, target, relation, builder, keys or [])
    _write(conn, target.target, pending, batches)
    return read_newest if read_newest is not None and (newest is None or read_newest > newest) else newest


class _State(NamedTuple):
    """What the target was last sent of a record (``ops.push_records``)."""

    content_hash: str
    withdrawn: bool
    changed_at: datetime | None


@dataclass
class _Pending:
    """Outbox, payload and state rows of one chunk, written together."""

    outbox: list[tuple[Any, ...]] = field(default_factory=list)
    states: list[tuple[Any, ...]] = field(default_factory=list)  # of records the target has a state for
    new_states: list[tuple[Any, ...]] = field(default_factory=list)  # of records it has none for yet
    payloads: list[tuple[str, str]] = field(default_factory=list)  # (content hash, canonical JSON)
    superseding: list[str] = field(default_factory=list)  # record ids the target has a state for


def _write(conn: psycopg.Connection, target: str, pending: _Pending, batches: Batches | None = None) -> None:
    """Write one chunk: its payloads, the target's new state of each record, and the outbox rows (COPY).

    With ``batches`` (a push run) each outbox row goes in once, in its final place: its batch and state
    ``batched`` (the batches themselves are written at the end of the run: :meth:`Batches.write`).
    """
    if pending.superseding:
        # A record queued again before its older row went out: only the newest (about to be written) is sent.
        # Only records the target already had a state for can have such a row.
        conn.execute("update ops.push_outbox set state = 'superseded' where target = %s and record_key = any(%s)"
                     " and state = 'due'", (target, pending.superseding))
    if pending.states:
        conn.execute("create temp table if not exists push_states_in (target text, record_key text, relation text,"
                     " natural_key text, content_hash text, withdrawn boolean, publish_until date,"
                     " changed_at timestamptz) on commit drop")
        conn.execute("truncate push_states_in")
        with conn.cursor().copy("copy push_states_in from stdin") as copy:
            for row in pending.states:
                copy.write_row(row)
        conn.execute(
            "insert into ops.push_records (target, record_key, relation, natural_key, content_hash, withdrawn,"
            " publish_until, changed_at) select * from push_states_in on conflict (target, record_key) do update set"
            " content_hash = excluded.content_hash, withdrawn = excluded.withdrawn,"
            " publish_until = excluded.publish_until, relation = excluded.relation, changed_at = excluded.changed_at,"
            " updated_at = now()")
    if pending.new_states:
        # None when read, in this transaction under the target's lock, and a relation's keys are unique: each goes
        # in once, by COPY, without the upsert's temporary table and conflict check.
        with conn.cursor().copy("copy ops.push_records (target, record_key, relation, natural_key, content_hash,"
                                " withdrawn, publish_until, changed_at) from stdin") as copy:
            for row in pending.new_states:
                copy.write_row(row)
    if pending.payloads:
        store_payloads(conn, pending.payloads)
    if pending.outbox:
        columns = (*OUTBOX_COLUMNS, "batch_id", "state") if batches is not None else OUTBOX_COLUMNS
        with conn.cursor().copy(sql.SQL("copy ops.push_outbox ({}) from stdin").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)))) as copy:
            if batches is None:
                for row in pending.outbox:
                    copy.write_row(row)
            else:  # outbox order is batch order: each row's batch is the open one when it is written
                for row in pending.outbox:
                    copy.write_row((*row, batches.add(), "batched"))


def store_payloads(conn: psycopg.Connection, payloads: Sequence[tuple[str, str]]) -> None:
    """Keep rendered payloads ``(content hash, canonical JSON)`` in ``push_private.payloads`` (once each; COPY)."""
    conn.execute("create temp table if not exists push_payloads_in (content_hash text, payload text) on commit drop")
    conn.execute("truncate push_payloads_in")
    with conn.cursor().copy("copy push_payloads_in from stdin") as copy:
        for row in payloads:
            copy.write_row(row)
    conn.execute("insert into push_private.payloads (content_hash, payload) select content_hash, payload"
                 " from push_payloads_in on conflict (content_hash) do nothing")


def _add_withdrawals(pending: _Pending, target: Target, relation: PushRelation, builder: PayloadBuilder,
                     keys: Sequence[str]) -> int:
    """Queue the withdrawal of each of ``keys`` (records the target holds) into ``pending``; how many."""
    for key in keys:
        record = builder.withdraw(key)
        text = canonical_json(record)
        digest = text_hash(text)
        pending.payloads.append((digest, text))
        pending.superseding.append(record["record_id"])
        pending.outbox.append((target.target, record["record_id"], relation.name, "withdraw", digest, None, None,
                               None, None, None))
        pending.states.append((target.target, record["record_id"], relation.name, key, digest, True, None, None))
    return len(keys)


def compute_due(conn: psycopg.Connection, registry: Registry, target: Target, *, today: date | None = None,
                full: bool = False, batched: bool = False) -> DueReport:
    """Queue what is due at ``target`` (see the module docstring); commits. ``full`` ignores the cursor.

    ``today`` (what 公示截止期 is judged against): by default the Asia/Shanghai day, not the machine's.
    ``batched`` (a push run, which sends at once): the rows are cut into the target's batches as they are
    queued, each written once as ``batched`` — what :func:`huiju.push.sender.assign_batches` would make of
    them (outbox order, ``batch_size`` each), without writing every row a second time. Not while rows queued
    earlier are still ``due`` (a replay's): those go first, so the rows are queued ``due`` behind them and
    ``assign_batches`` cuts them all in order.
    """
    today = today or business_day()
    report = DueReport(target.target)
    deadlines = _Deadlines(target.publication_working_days)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"huiju.push:{target.target}",))
        batches = _open_batches(conn, target) if batched else None
        for relation in target.relations:
            builder = payload_builder(registry, target, relation)
            rendering = builder.rendering(target)
            cursor = conn.execute("select watermark, rendering, read_at from ops.push_cursors where target = %s"
                                  " and relation = %s", (target.target, relation.name)).fetchone()
            # From nothing: the first run, when told, and when the target's rendering of the relation changed.
            incremental = not full and cursor is not None and cursor[0] is not None and cursor[1] == rendering
            since = read_since(cursor[0], cursor[2]) if incremental else None
            newest = cursor[0] if cursor else None
            rendering_sql = _warehouse_payload(conn, relation, builder)
            if rendering_sql is None:
                newest = _queue_in_python(conn, target, relation, builder, since, newest, deadlines, batches, report)
            else:
                newest = _queue_in_warehouse(conn, target, relation, builder, since, newest, deadlines, batches,
                                             report, rendering=rendering_sql)
            # Past 公示截止期 since the last run, with nothing published about the record since.
            expired = [key for (key,) in conn.execute(
                "select natural_key from ops.push_records where target = %s and relation = %s and not withdrawn"
                " and publish_until < %s order by natural_key", (target.target, relation.name, today))]
            # Sent, and gone from the relation (deleted or corrected away at the source).
            gone = _gone(conn, target, relation)
            withdrawals = _Pending()
            report.withdrawals += _add_withdrawals(withdrawals, target, relation, builder,
                                                   sorted(set(expired) | set(gone)))
            _write(conn, target.target, withdrawals, batches)
            # read_at: this transaction's start, no later than the snapshot the relation was read in.
            conn.execute("insert into ops.push_cursors (target, relation, watermark, rendering, read_at)"
                         " values (%s, %s, %s, %s, now()) on conflict (target, relation) do update set"
                         " watermark = excluded.watermark, rendering = excluded.rendering, read_at = excluded.read_at",
                         (target.target, relation.name, newest, rendering))
        if batches is not None:
            batches.write(conn)
            report.batches = batches.last_no - batches.first_no
        _refresh_statistics(conn, report)
    log.info("push %s: %d upserts, %d withdrawals due (%d unchanged)", target.target, report.upserts,
             report.withdrawals, report.unchanged)
    return report


def read_since(watermark: datetime, read_at: datetime | None) -> datetime:
    """Where an incremental run reads a relation from: every row published after the last run's newest
    (``watermark``), and every row the last run could not see — committed after it read (``read_at``), so
    published at most :data:`CURSOR_OVERLAP` before that. A cursor without its read time (written before
    migration 184): :data:`CURSOR_OVERLAP` before the watermark, as before.

    The day after the first run, which read a whole relation published at one instant, reads the day's rows
    only, not the whole relation again.
    """
    if read_at is None:
        return watermark - CURSOR_OVERLAP
    return min(watermark, read_at - CURSOR_OVERLAP)


#: The share of a target's push state a run may change before it refreshes the statistics (autovacuum's own).
ANALYZE_SHARE = 0.1


def _refresh_statistics(conn: psycopg.Connection, report: DueReport) -> None:
    """Analyze the push state (``ops.analyze_push_state``, migrations 184 and 304: records, outbox, payloads) when
    this run queued more than :data:`ANALYZE_SHARE` of what the planner last counted, as autovacuum would, but at
    once: the next run's reads are planned for the tables as they are (a day's 1% read in a second, not in ten),
    and so are the sender's reads of the batches just cut (each batch's payloads found by key, not by a scan)."""
    (sampled,) = conn.execute("select reltuples from pg_class where oid = 'ops.push_records'::regclass").fetchone()
    if report.queued > ANALYZE_SHARE * max(sampled, 0):
        conn.execute("select ops.analyze_push_state()")


def _open_batches(conn: psycopg.Connection, target: Target) -> Batches | None:
    """The target's batches to cut rows into as they are queued; None while rows queued earlier are still due."""
    if conn.execute("select exists (select 1 from ops.push_outbox where target = %s and batch_id is null"
                    " and state = 'due')", (target.target,)).fetchone() != (False,):
        return None
    (last,) = conn.execute("select coalesce(max(batch_no), 0) from ops.push_batches where target = %s",
                           (target.target,)).fetchone() or (0,)
    return Batches(target.target, target.batch_size, first_no=last)


def _gone(conn: psycopg.Connection, target: Target, relation: PushRelation) -> list[str]:
    schema, table = relation.relation.split(".", 1)
    conditions = [sql.SQL("r.{key}::text = s.natural_key").format(key=sql.Identifier(relation.key))]
    params: list[Any] = [target.target, relation.name]
    conditions, params = _without_backflow(relation, target, conditions, params)
    query = sql.SQL(
        "select s.natural_key from ops.push_records s where s.target = %s and s.relation = %s and not s.withdrawn"
        " and not exists (select 1 from {table} r where {conditions}) order by s.natural_key").format(
        table=sql.Identifier(schema, table), conditions=sql.SQL(" and ").join(conditions))
    # The origin condition's parameter comes after the two of the outer query in the text.
    return [key for (key,) in conn.execute(query, params)]
