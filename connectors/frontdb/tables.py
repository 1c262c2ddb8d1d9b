"""The department's table: what it has, and the queries that read it (SQLAlchemy Core, every dialect).

Queries are expressions over lightweight ``table()``/``column()`` objects; the keyset condition
"strictly after (watermark, key1, key2 …)" is written as nested ``OR``/``AND`` rather than a
row-value comparison, because Oracle has no ``(a, b) > (x, y)``. Reading streams from a
server-side cursor (``stream_results=True``) ``yield_per`` rows at a time, so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True)
class SourceColumn:
    """A column of the department's table as the database describes it."""

    name: str
    type: str  # the type's compiled name, e.g. VARCHAR(200), TIMESTAMP


def describe_table(conn: sa.Connection, table: str, schema: str | None) -> list[SourceColumn]:
    """The table's (or view's) columns in order; an empty list when it does not exist."""
    inspector = sa.inspect(conn)
    try:
        columns = inspector.get_columns(table, schema=schema)
    except sa.exc.NoSuchTableError:
        return []
    out = []
    for column in columns:
        try:
            type_name = column["type"].compile(dialect=conn.dialect)
        except Exception:  # an exotic type the dialect cannot render still has a name
            type_name = type(column["type"]).__name__
        out.append(SourceColumn(column["name"], str(type_name)))
    return out


def source_table(table: str, columns: Sequence[str], schema: str | None) -> sa.TableClause:
    """A lightweight table clause (no reflection, no metadata) for building queries."""
    return sa.table(table, *(sa.column(c) for c in columns), schema=schema)


def after_condition(columns: Sequence[sa.ColumnElement], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """``(c1, c2, …) > (v1, v2, …)`` in lexicographic order, as plain AND/OR every dialect accepts."""
    first, value = columns[0], values[0]
    if len(columns) == 1:
        return first > value
    return sa.or_(first > value, sa.and_(first == value, after_condition(columns[1:], values[1:])))


def watermark_query(table: sa.TableClause, watermark: str, keys: Sequence[str], since: Any | None = None,
                    after: Sequence[Any] | None = None) -> sa.Select:
    """Rows with a watermark ``>= since`` (or strictly after the pair ``after``), ordered by (watermark, keys).

    ``since`` is the greatest watermark already landed: rows sharing it are read again, so a
    row that arrives later with that very watermark — whatever its key — is not lost; the
    caller skips the keys it already landed at that watermark (they come first, in key order).
    ``after`` (a (watermark, keys…) pair) is the older, pair-only position, kept for cursors
    stored before the keys at the watermark were.
    """
    order = [table.c[watermark], *(table.c[k] for k in keys)]
    query = sa.select(*table.c).where(table.c[watermark].is_not(None)).order_by(*order)
    if since is not None:
        query = query.where(table.c[watermark] >= since)
    elif after is not None:
        query = query.where(after_condition(order, after))
    return query


def flag_query(table: sa.TableClause, flag: str, pending: str, keys: Sequence[str], limit: int) -> sa.Select:
    """Up to ``limit`` rows the department marked pending, in key order."""
    return (sa.select(*table.c).where(table.c[flag] == pending)
            .order_by(*(table.c[k] for k in keys)).limit(limit))


def snapshot_query(table: sa.TableClause, keys: Sequence[str]) -> sa.Select:
    """Every row, in key order (stable batches, so an unchanged snapshot lands as repeats)."""
    return sa.select(*table.c).order_by(*(table.c[k] for k in keys))


def mark_rows(conn: sa.Connection, table: sa.TableClause, keys: Sequence[str], key_values: Sequence[Sequence[Any]],
              values: Mapping[str, Any], only_if: sa.ColumnElement[bool] | None = None) -> int:
    """Write ``values`` back to the rows with the given keys (exchange-flag acknowledgement)."""
    done = 0
    for start in range(0, len(key_values), 500):  # Oracle caps IN lists at 1000 items
        chunk = key_values[start:start + 500]
        if len(keys) == 1:
            match = table.c[keys[0]].in_([k[0] for k in chunk])
        else:
            match = sa.or_(*(sa.and_(*(table.c[n] == v for n, v in zip(keys, k, strict=True))) for k in chunk))
        statement = sa.update(table).where(match).values(**values)
        if only_if is not None:
            statement = statement.where(only_if)
        done += conn.execute(statement).rowcount
    return done


def stream(conn: sa.Connection, query: sa.Executable, batch_size: int) -> Iterator[tuple[list[str], list[sa.Row]]]:
    """Yield (column names, rows) batches of ``batch_size`` from a server-side cursor."""
    result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(query)
    names = list(result.keys())
    for part in result.partitions(batch_size):
        yield names, part
