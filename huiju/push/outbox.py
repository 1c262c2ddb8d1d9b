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

Incremental: only rows published since the cursor are read, joined in the same query with what the
target was last sent of each (``ops.push_records``: content hash, and the row's publication time when it
was rendered, migration 182); a row read again with nothing new is left out before rendering. A change in
how the target renders a relation (``ops.push_cursors.rendering``) reads it whole once.

Everything runs in one transaction under the target's advisory lock; the outbox rows are written
with COPY — in a push run once each, already in their batches (``batched``; see :func:`compute_due`).
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
    the target's last (``ops.push_batches``); each closed batch is ``(batch_id, target, batch_no, parent, key,
    records)`` until written."""

    target: str
    size: int
    last_no: int
    first_no: int = 0  # the last batch number before these
    hashes: list[str] = field(default_factory=list)  # the open batch's rows' content hashes, in order
    closed: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, digest: str) -> str:
        """Put a row (its content hash) in the open batch; the batch's id. A full batch is closed."""
        batch_id = batch_id_of(self.target, self.last_no + 1)
        self.hashes.append(digest)
        if len(self.hashes) == self.size:
            self.close()
        return batch_id

    def close(self) -> None:
        """Close the open batch (if it holds any row)."""
        if self.hashes:
            self.last_no += 1
            batch_id = batch_id_of(self.target, self.last_no)
            self.closed.append((batch_id, self.target, self.last_no, None, idempotency_key(batch_id, self.hashes),
                                len(self.hashes)))
            self.hashes = []


def copy_batches(conn: psycopg.Connection, batches: Sequence[tuple[Any, ...]]) -> None:
    """Write batches ``(batch_id, target, batch_no, parent_batch_id, idempotency_key, records)`` (COPY)."""
    with conn.cursor().copy("copy ops.push_batches (batch_id, target, batch_no, parent_batch_id, idempotency_key,"
                            " records) from stdin") as copy:
        for row in batches:
            copy.write_row(row)


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


def _rows(conn: psycopg.Connection, relation: PushRelation, target: Target, item_set_prefix: str,
          since: datetime | None) -> Iterator[list[tuple[dict[str, Any], _State | None]]]:
    """The relation's rows published since ``since`` (all when None), in chunks, each with what the target was
    last sent of it (None when never): one streaming join, no look-up per chunk.

    Since ``since``, a row whose changed column is the one recorded when it was last rendered is left out
    in the query (read again by the cursor's overlap, nothing new): its payload would be the same. Not
    left out: a row no longer publishable (a view judging 公示截止期 by today's date changes without a
    new version), and a record the target holds withdrawn.
    """
    columns = _columns(relation)
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
        "select {columns}, s.content_hash, s.withdrawn, s.changed_at from {table} r left join ops.push_records s"
        " on s.target = %s and s.record_key = %s || r.{key}::text{where}").format(
        columns=sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in columns),
        table=sql.Identifier(schema, table), key=sql.Identifier(relation.key),
        where=sql.SQL(" where ") + sql.SQL(" and ").join(conditions) if conditions else sql.SQL(""))
    width = len(columns)
    with conn.cursor(name=f"push_{target.target}_{table}") as cur:
        cur.itersize = CHUNK
        cur.execute(query, params)
        while True:
            chunk = cur.fetchmany(CHUNK)
            if not chunk:
                return
            yield [(dict(zip(columns, row[:width], strict=True)),
                    None if row[width] is None else _State(*row[width:])) for row in chunk]


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
    ``batched``; the batches it closed are written with it.
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
                    copy.write_row((*row, batches.add(row[4]), "batched"))
    if batches is not None and batches.closed:
        copy_batches(conn, batches.closed)
        batches.closed.clear()


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
            batches.close()
            copy_batches(conn, batches.closed)
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
    """Analyze the push state (``ops.analyze_push_state``, migration 184) when this run queued more than
    :data:`ANALYZE_SHARE` of what the planner last counted, as autovacuum would, but at once: the next run's
    reads are planned for the tables as they are (a day's 1% read in a second, not in ten)."""
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
    return Batches(target.target, target.batch_size, last, first_no=last)


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
