"""PostgreSQL → PostgreSQL: a front-end table read batch by batch with ``COPY`` on both sides.

For each batch the (watermark, keys) of its last row is found first (an index range scan with
OFFSET), then ``COPY (SELECT … WHERE pair > previous AND pair <= last) TO STDOUT`` on the source
renders ``_row_no``, ``_extra`` and the mapped columns in raw's text form (timestamps as ISO
8601, as the row path writes them), and a thread reads it while the warehouse's ``COPY FROM
STDIN`` takes it: no row passes through Python. Only from a UTF8 database: there no column can
be declared latin1, so the wrongly declared encoding the row path looks for cannot occur.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql as pgsql

from .tables import SourceColumn

__all__ = ["WatermarkCopy", "copy_out_in_thread"]


class WatermarkCopy:
    """The queries of a watermark read by ``COPY`` from one PostgreSQL table (``driver``: its psycopg connection).

    The read starts at ``since`` (the greatest watermark landed, ``>=``) minus the rows whose keys
    are ``keys_at_since`` (landed at it), or at the start; each batch is the rows after the
    previous batch's last (watermark, keys) pair up to its own last pair.
    """

    def __init__(self, driver: psycopg.Connection, table: str, schema: str | None, columns: Sequence[SourceColumn],
                 mapped: Sequence[str], watermark: str, keys: Sequence[str], since: Any | None,
                 keys_at_since: Sequence[Sequence[Any]]) -> None:
        self.driver = driver
        self.table = pgsql.Identifier(*([schema] if schema else []), table)
        self.watermark = watermark
        order = [watermark, *keys]
        self.order = order
        self.pair = pgsql.SQL(", ").join(pgsql.Identifier(c) for c in order)
        self.placeholders = pgsql.SQL(", ").join(pgsql.Placeholder() * len(order))
        self.key_list = pgsql.SQL(", ").join(pgsql.Identifier(k) for k in keys)
        types = {c.name: c.type.upper() for c in columns}

        def as_text(name: str) -> pgsql.Composable:
            column = pgsql.Identifier(name)
            if types.get(name, "").startswith(("TEXT", "VARCHAR", "CHAR")):
                return column
            return pgsql.SQL("to_json({}) #>> '{{}}'").format(column)  # ISO 8601, like the row path

        #: Columns of the table that are not mapped: they land in ``_extra``.
        self.extra_names = [c.name for c in columns if c.name not in mapped]
        self.extra = pgsql.SQL("json_build_object({})::text").format(pgsql.SQL(", ").join(
            pgsql.SQL("{}, {}").format(pgsql.Literal(n), pgsql.Identifier(n)) for n in self.extra_names)) \
            if self.extra_names else pgsql.SQL("null")
        self.mapped = pgsql.SQL(", ").join(as_text(c) for c in mapped)
        # Where the run starts: at the stored watermark, minus the keys already landed there.
        base = pgsql.SQL("where {m} is not null").format(m=pgsql.Identifier(watermark))
        base_params: list = []
        if since is not None:
            base = pgsql.SQL("{w} and {m} >= %s").format(w=base, m=pgsql.Identifier(watermark))
            base_params = [since]
            if keys_at_since:
                # The landed keys travel as text and are cast back to the key columns' own types.
                # The type is named by the catalogue (schema and internal name), quoted as identifiers
                # by psycopg: a type name read from the source is never spliced into the SQL.
                key_types = _catalogue_types(driver, self.table, keys)
                landed = pgsql.SQL("select {casts} from unnest({arrays}) as u({names})").format(
                    casts=pgsql.SQL(", ").join(pgsql.SQL("{}::{}").format(pgsql.Identifier(f"k{i}"),
                                                                           pgsql.Identifier(*key_types[k]))
                                               for i, k in enumerate(keys)),
                    arrays=pgsql.SQL(", ").join(pgsql.SQL("%s::text[]") for _ in keys),
                    names=pgsql.SQL(", ").join(pgsql.Identifier(f"k{i}") for i in range(len(keys))))
                base = pgsql.SQL("{w} and not ({m} = %s and ({keys}) in ({landed}))").format(
                    w=base, m=pgsql.Identifier(watermark), landed=landed,
                    keys=pgsql.SQL(", ").join(pgsql.Identifier(k) for k in keys))
                base_params += [since, *([str(k[i]) for k in keys_at_since] for i in range(len(keys)))]
        self.base, self.start_params = base, base_params

    def _after(self, after: Sequence[Any] | None) -> tuple[pgsql.Composable, list]:
        where, params = self.base, list(self.start_params)
        if after is not None:
            where = pgsql.SQL("{w} and ({pair}) > ({ph})").format(w=where, pair=self.pair, ph=self.placeholders)
            params += after
        return where, params

    def batch_end(self, after: Sequence[Any] | None, batch_size: int) -> tuple | None:
        """The (watermark, keys…) of the next batch's last row after the pair ``after``; None when none is left."""
        where, params = self._after(after)
        last = self.driver.execute(pgsql.SQL("select {pair} from {t} {w} order by {pair} offset %s limit 1").format(
            pair=self.pair, t=self.table, w=where), [*params, batch_size - 1]).fetchone()
        if last is None:
            last = self.driver.execute(pgsql.SQL("select {pair} from {t} {w} order by {desc} limit 1").format(
                pair=self.pair, t=self.table, w=where,
                desc=pgsql.SQL(", ").join(pgsql.SQL("{} desc").format(pgsql.Identifier(c)) for c in self.order)),
                params).fetchone()
        return last

    def keys_at_end(self, after: Sequence[Any] | None, last: Sequence[Any]) -> list[tuple]:
        """The keys of the batch's rows at its last watermark, in key order."""
        where, params = self._after(after)
        return self.driver.execute(pgsql.SQL("select {keys} from {t} {w} and ({pair}) <= ({ph}) and {m} = %s"
                                             " order by {pair}").format(
            keys=self.key_list, t=self.table, w=where, pair=self.pair, ph=self.placeholders,
            m=pgsql.Identifier(self.watermark)), [*params, *last, last[0]]).fetchall()

    def rows(self, after: Sequence[Any] | None, last: Sequence[Any], first_row_no: int) -> Iterator[bytes]:
        """The batch as raw's COPY text (``_row_no`` from ``first_row_no``, ``_extra``, mapped fields), in blocks."""
        where, params = self._after(after)
        query = pgsql.SQL(
            "copy (select row_number() over (order by {pair}) + {offset}, {extra}, {mapped} from {t} {w}"
            " and ({pair}) <= ({ph}) order by {pair}) to stdout").format(
            pair=self.pair, offset=pgsql.Literal(first_row_no - 1), extra=self.extra, mapped=self.mapped,
            t=self.table, w=where, ph=self.placeholders)
        return copy_out_in_thread(self.driver, query, (*params, *last))


def _catalogue_types(driver: psycopg.Connection, table: pgsql.Composable,
                     columns: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``column → (type schema, type name)`` of the table's columns, from ``pg_attribute``/``pg_type``."""
    rows = driver.execute(
        "select a.attname, n.nspname, t.typname from pg_attribute a join pg_type t on t.oid = a.atttypid"
        " join pg_namespace n on n.oid = t.typnamespace"
        " where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped and a.attname = any(%s)",
        (table.as_string(driver), list(columns))).fetchall()
    found = {name: (schema, type_name) for name, schema, type_name in rows}
    return {c: found.get(c, ("pg_catalog", "text")) for c in columns}


def copy_out_in_thread(driver: psycopg.Connection, query: Any, values: tuple,
                        block_size: int = 1 << 18) -> Iterator[bytes]:
    """The rows of ``COPY … TO STDOUT`` on the source, read by a thread and handed over in blocks.

    psycopg delivers a COPY one row per call, which costs Python time per row; reading in a
    thread lets that overlap with the warehouse's COPY, so the two databases work side by side
    (the fastest pipe, ``COPY TO`` straight into ``COPY FROM``, gets that overlap by writing
    each row at once). At most 16 blocks wait in between, so memory stays flat. Closing the
    generator (a failed landing) stops the reader, which leaves the source's COPY cleanly.
    """
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
