"""A report's tables, computed from the analysis layer as of an instant.

The analysis views read the session setting ``huiju.as_of`` (dbt_project/macros/analysis.sql): set
here for the transaction, they show what the platform had published by then, so a report for a past
period computed again later gives the same numbers. The queries are built from the report's
configuration with identifiers quoted by psycopg (the configuration allows plain names only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from huiju.monitoring.scorecards import month_bounds
from huiju.reports.config import Report, Table

BEIJING = ZoneInfo("Asia/Shanghai")
ANALYSIS_SCHEMA = "analysis"


@dataclass(frozen=True)
class Period:
    """A report's period: ``2026-11`` (a month) or ``2026-W47`` (an ISO week), in Beijing time."""

    key: str
    start: date
    end: date  # exclusive

    @property
    def month(self) -> date:
        """The month the statistics are read for: the period's own, or for a week the month of its last day."""
        last = self.end - timedelta(days=1)
        return last.replace(day=1)

    @property
    def closes_at(self) -> datetime:
        """The instant the period ends (Beijing midnight)."""
        return datetime.combine(self.end, datetime.min.time(), tzinfo=BEIJING)

    @property
    def label(self) -> str:
        """The period as a leader reads it: ``2026年11月`` or ``2026年第47周（11月16日—11月22日）``."""
        if "W" not in self.key:
            return f"{self.start.year}年{self.start.month}月"
        last = self.end - timedelta(days=1)
        return (f"{self.start.isocalendar().year}年第{self.start.isocalendar().week}周"
                f"（{self.start.month}月{self.start.day}日—{last.month}月{last.day}日）")


_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_period(kind: str, key: str) -> Period:
    """``month`` + ``2026-11`` or ``week`` + ``2026-W47``; ValueError for anything else."""
    if kind == "month":
        if not re.fullmatch(r"\d{4}-\d{2}", key):
            raise ValueError(f"a monthly report's period is YYYY-MM, not {key!r}")
        start, end = month_bounds(key)
        return Period(key, start, end)
    match = _WEEK.match(key)
    if not match:
        raise ValueError(f"a weekly report's period is YYYY-Www (ISO week), not {key!r}")
    start = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    return Period(key, start, start + timedelta(days=7))


def period_containing(kind: str, day: date) -> Period:
    """The period of ``kind`` that ``day`` falls in."""
    if kind == "month":
        return parse_period(kind, f"{day:%Y-%m}")
    iso = day.isocalendar()
    return parse_period(kind, f"{iso.year}-W{iso.week:02d}")


def previous_period(kind: str, now: datetime) -> Period:
    """The last period that has closed by ``now`` (what a scheduled run reports on)."""
    current = period_containing(kind, now.astimezone(BEIJING).date())
    return period_containing(kind, current.start - timedelta(days=1))


@dataclass(frozen=True)
class TableResult:
    """One table's rows: its group columns then its measures, with the headers a person reads."""

    table: Table
    headers: tuple[str, ...]
    keys: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    totals: dict[str, Any]  # each measure over the whole period (no grouping)


def _measure_sql(measure) -> sql.Composable:
    if measure.agg == "sum":
        return sql.SQL("coalesce(sum({}), 0) as {}").format(sql.Identifier(measure.column), sql.Identifier(measure.key))
    return sql.SQL("round(sum({})::numeric / nullif(sum({}), 0), 4) as {}").format(
        sql.Identifier(measure.column), sql.Identifier(measure.of), sql.Identifier(measure.key))


def _first_month(period: Period, months_back: int) -> date:
    first = period.month
    for _ in range(months_back):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


def _where(table: Table, period: Period, months_back: int) -> sql.Composable:
    """``table``'s filter and its period (``months_back`` months before the period's month to it), values
    as literals (psycopg quotes them)."""
    conditions: list[sql.Composable] = [sql.SQL("{} = {}").format(sql.Identifier(column), sql.Literal(value))
                                        for column, value in sorted(table.where.items())]
    if table.period_column:
        conditions.append(sql.SQL("{} between {} and {}").format(
            sql.Identifier(table.period_column), sql.Literal(_first_month(period, months_back)),
            sql.Literal(period.month)))
    return sql.SQL(" where ") + sql.SQL(" and ").join(conditions) if conditions else sql.SQL("")


def _query(table: Table, source: sql.Composable, group_by: tuple[str, ...]) -> sql.Composed:
    columns = [sql.Identifier(column) for column in group_by]
    selected = sql.SQL(", ").join([*columns, *(_measure_sql(m) for m in table.measures)])
    query = sql.SQL("select {} from {}").format(selected, source)
    if group_by:
        first_key = table.measures[0].key
        order = (sql.SQL(", ").join(columns) if table.period_column in group_by
                 else sql.SQL("{} desc nulls last, {}").format(sql.Identifier(first_key), sql.SQL(", ").join(columns)))
        query = query + sql.SQL(" group by {} order by {}").format(sql.SQL(", ").join(columns), order)
    return query


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def _selection_key(table: Table) -> tuple:
    return table.relation, tuple(sorted(table.where.items())), table.period_column


def _period_rows(conn: psycopg.Connection, table: Table, period: Period, kept: dict[tuple, sql.Identifier],
                 months_back: int) -> sql.Composable:
    """The rows ``table`` adds up: a temporary table made once per relation and filter for the whole report
    (over the longest span, ``months_back``, its tables ask for), narrowed to ``table``'s own months.

    Tables of one relation (most of a report: the month by district, by department … and its 12-month
    trend) then group a few thousand rows each, instead of each computing the analysis view again.
    """
    key = _selection_key(table)
    if key not in kept:
        name = sql.Identifier(f"report_rows_{len(kept)}")
        conn.execute(sql.SQL("create temporary table {} on commit drop as select * from {}{}").format(
            name, sql.Identifier(ANALYSIS_SCHEMA, table.relation), _where(table, period, months_back)))
        kept[key] = name
    if not table.period_column or months_back == table.months_back:
        return kept[key]
    return sql.SQL("(select * from {}{}) as narrowed").format(kept[key], _where(table, period, table.months_back))


def table_result(conn: psycopg.Connection, table: Table, period: Period,
                 department_names: dict[str, str] | None = None,
                 kept: dict[tuple, sql.Identifier] | None = None, months_back: int | None = None) -> TableResult:
    """One table of a report for ``period``, read as of the instant set on ``conn`` (:func:`read_as_of`).

    ``kept`` and ``months_back``: the report's temporary tables, each made over the longest span of the
    tables reading it (:func:`report_tables`).
    """
    source = _period_rows(conn, table, period, {} if kept is None else kept,
                          table.months_back if months_back is None else months_back)
    names = department_names or {}
    department_columns = {table.group_by.index(c) for c in table.department_names}
    rows = []
    for row in conn.execute(_query(table, source, table.group_by)).fetchall():
        cells = [_plain(v) for v in row]
        for index in department_columns:
            cells[index] = names.get(cells[index], cells[index])
        for index, column in enumerate(table.group_by):
            if column == table.period_column and isinstance(cells[index], date):
                cells[index] = f"{cells[index]:%Y-%m}"
        rows.append(tuple(cells))
    total_row = conn.execute(_query(table, source, ())).fetchone()
    totals = {m.key: _plain(v) for m, v in zip(table.measures, total_row, strict=True)}
    headers = tuple(table.labels.get(c, c) for c in table.group_by) + tuple(m.label for m in table.measures)
    keys = tuple(table.group_by) + tuple(m.key for m in table.measures)
    return TableResult(table, headers, keys, tuple(rows), totals)


def read_as_of(conn: psycopg.Connection, as_of: datetime) -> None:
    """Make the analysis views on ``conn`` show what was published by ``as_of`` (this transaction only)."""
    conn.execute("select set_config('huiju.as_of', %s, true)", (as_of.isoformat(),))


def report_tables(conn: psycopg.Connection, report: Report, period: Period, as_of: datetime,
                  department_names: dict[str, str] | None = None) -> list[TableResult]:
    """Every table of ``report`` for ``period`` as of ``as_of``, in one transaction."""
    kept: dict[tuple, sql.Identifier] = {}
    span: dict[tuple, int] = {}
    for table in report.tables:
        key = _selection_key(table)
        span[key] = max(span.get(key, 0), table.months_back)
    with conn.transaction():
        read_as_of(conn, as_of)
        return [table_result(conn, table, period, department_names, kept, span[_selection_key(table)])
                for table in report.tables]
