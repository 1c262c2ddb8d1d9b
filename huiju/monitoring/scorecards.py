"""Monthly scorecards (报送考核) per department and source, and the month's ranking of departments (通报).

Computed from the submission ledger (``ops.submissions``, :mod:`huiju.monitoring.ledger`) over the
periods that **end in the month** (a monthly source's November report is in November's card, even
though it is due in December):

* 报送及时率 (timeliness) = periods delivered on time ÷ periods due;
* 完整率 (completeness) = periods delivered (on time or late) ÷ periods due;
* 数据合格率 (quality) = rows accepted ÷ rows received;
* 问题数据整改率 (correction) = problem rows sent back that a resubmission corrected ÷ problem rows sent back.

A period is *due* once its status is settled — on time, late, held or missing; periods still
pending and periods whose deadline the calendar cannot give (``unknown``) are not counted. A rate
with nothing to divide is None (shown as —). A department's ``score`` is the mean of its available
rates, ×100; the ranking orders departments by score, then timeliness, then completeness.

Departments' monthly totals (the 通报, the dashboard's trend) are read from the ledger's monthly summary
``ops.submission_months``, which the monitor rewrites with the ledger rows it rebuilds
(:func:`refresh_months`); a source's card is aggregated from the ledger itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from huiju.registry import Registry

# {source} and {groups}: per source and per department (grouping sets), or per department only (the trend).
_SCORECARD = """
select to_char(period_end, 'YYYY-MM') as month, department, {source} as source_id,
       count(*) filter (where status in ('on_time', 'late', 'held', 'missing')) as periods_due,
       count(*) filter (where status in ('on_time', 'late')) as periods_delivered,
       count(*) filter (where status = 'on_time') as periods_on_time,
       coalesce(sum(rows_received), 0)::bigint as rows_received,
       coalesce(sum(rows_accepted), 0)::bigint as rows_accepted,
       coalesce(sum(feedback_rows), 0)::bigint as feedback_rows,
       coalesce(sum(rows_corrected), 0)::bigint as rows_corrected
  from ops.submissions
 where period_end >= %(start)s and period_end < %(next)s
   and (%(department)s::text is null or department = %(department)s)
 group by {groups}
 order by 1, department, source_id nulls first
"""
_BY_SOURCE = _SCORECARD.format(source="source_id", groups="grouping sets ((1, department, source_id), (1, department))")
# The departments' totals, from the ledger's monthly summary (migration 301, kept by :func:`refresh_months`).
_TOTALS = """
select month, department, null::text as source_id, periods_due, periods_delivered, periods_on_time, rows_received,
       rows_accepted, feedback_rows, rows_corrected
  from ops.submission_months
 where month >= %(first)s and month <= %(last)s and (%(department)s::text is null or department = %(department)s)
 order by month, department
"""
T = TypeVar("T")


def frozen_rows(cls: type[T], rows: Iterable[Mapping[str, Any]]) -> list[T]:
    """Instances of the frozen dataclass ``cls``, one a row, each row's keys exactly its fields.

    Built as :mod:`copy` and :mod:`pickle` build them (the fields set on the new instance's ``__dict__``), not
    through the generated ``__init__``, whose ``object.__setattr__`` a field costs a ten-field card 3.6 µs
    against 0.2 µs: the dashboard's overview reads 390 cards a page, its department page 50 batches.
    """
    expected = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    built = []
    for row in rows:
        instance = object.__new__(cls)
        instance.__dict__.update(row)
        built.append(instance)
    if built and list(vars(built[0])) != expected:
        raise ValueError(f"{cls.__name__} from rows of {list(vars(built[0]))}, not its fields {expected}")
    return built


_MONTH_COLUMNS = ("month, department, periods_due, periods_delivered, periods_on_time, rows_received, rows_accepted,"
                  " feedback_rows, rows_corrected")


class Rate:
    """A scorecard rate: one of its counts divided by another, None when there is nothing to divide."""

    def __init__(self, part: str, whole: str, doc: str) -> None:
        self.part, self.whole, self.__doc__ = part, whole, doc

    def __get__(self, card: object, owner: type | None = None) -> float | None:
        if card is None:
            return self  # type: ignore[return-value]  # the descriptor itself, read on the class
        whole = getattr(card, self.whole)
        return getattr(card, self.part) / whole if whole else None


@dataclass(frozen=True)
class Scorecard:
    """One month of one department (``source_id`` None: all its sources) or one of its sources."""

    month: str  # 2026-11
    department: str
    source_id: str | None
    periods_due: int
    periods_delivered: int
    periods_on_time: int
    rows_received: int
    rows_accepted: int
    feedback_rows: int
    rows_corrected: int

    timeliness = Rate("periods_on_time", "periods_due", "报送及时率: periods delivered on time ÷ periods due.")
    completeness = Rate("periods_delivered", "periods_due", "完整率: periods delivered ÷ periods due.")
    quality = Rate("rows_accepted", "rows_received", "数据合格率: rows accepted ÷ rows received.")
    correction = Rate("rows_corrected", "feedback_rows",
                      "问题数据整改率: problem rows corrected by a resubmission ÷ problem rows sent back.")

    @property
    def score(self) -> float | None:
        """The mean of the available rates, ×100 (None when none is available)."""
        rates = [r for r in (self.timeliness, self.completeness, self.quality, self.correction) if r is not None]
        return 100 * sum(rates) / len(rates) if rates else None


@dataclass(frozen=True)
class Ranked:
    """A department's place in the month's 通报."""

    rank: int
    card: Scorecard


def month_bounds(month: str) -> tuple[date, date]:
    """``2026-11`` → (2026-11-01, 2026-12-01)."""
    start = date.fromisoformat(f"{month}-01")
    return start, date(start.year + (start.month == 12), start.month % 12 + 1, 1)


def scorecards(conn: psycopg.Connection, month: str, department: str | None = None) -> list[Scorecard]:
    """The month's scorecards: for each department its total (``source_id`` None) first, then each source."""
    return scorecards_between(conn, month, month, department)


def scorecards_between(conn: psycopg.Connection, first: str, last: str,
                       department: str | None = None, *, by_source: bool = True) -> list[Scorecard]:
    """The scorecards of the months ``first`` … ``last`` (``2026-01`` … ``2026-12``) in one query, month by month.

    Within a month as :func:`scorecards` orders them; a month with nothing ending in it has no card.
    ``by_source=False``: the departments' totals only.
    """
    start, _ = month_bounds(first)
    _, following = month_bounds(last)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_BY_SOURCE if by_source else _TOTALS,
                           {"start": start, "next": following, "first": first, "last": last,
                            "department": department}).fetchall()
    return frozen_rows(Scorecard, rows)


def refresh_months(conn: psycopg.Connection, keys: str | None = None) -> None:
    """Rewrite the ledger's monthly summary (``ops.submission_months``) from ``ops.submissions``, in the caller's
    transaction: the months of the departments listed in the table ``keys`` (columns ``department``, ``month``),
    or every month when ``keys`` is None.

    The monitor calls it right after rebuilding ledger rows (:func:`huiju.monitoring.ledger.refresh`), so the
    summary the dashboard reads never disagrees with the ledger. Each month is computed by the warehouse's
    ``ops.submission_month_totals`` (migration 301), the same figures :data:`_BY_SOURCE` gives as a total.
    """
    if keys is None:
        conn.execute("delete from ops.submission_months")
        wanted = sql.SQL("select distinct department, to_char(period_end, 'YYYY-MM') as month from ops.submissions")
    else:
        conn.execute(sql.SQL("delete from ops.submission_months m using {keys} k"
                             " where m.department = k.department and m.month = k.month").format(
                                 keys=sql.Identifier(keys)))
        wanted = sql.SQL("select distinct department, month from {keys}").format(keys=sql.Identifier(keys))
    conn.execute(sql.SQL("insert into ops.submission_months ({columns}) select t.* from ({wanted}) k"
                         " cross join lateral ops.submission_month_totals(k.department, k.month) t").format(
                             columns=sql.SQL(_MONTH_COLUMNS), wanted=wanted))


def ranking(conn: psycopg.Connection, month: str) -> list[Ranked]:
    """The month's 通报: departments with anything due or received, best first (equal scores share a rank)."""
    totals = [c for c in scorecards_between(conn, month, month, by_source=False) if c.periods_due or c.rows_received]

    def order(card: Scorecard) -> tuple:
        return (-(card.score or 0), -(card.timeliness or 0), -(card.completeness or 0), card.department)

    ranked: list[Ranked] = []
    for card in sorted(totals, key=order):
        same = ranked and ranked[-1].card.score == card.score and ranked[-1].card.timeliness == card.timeliness \
            and ranked[-1].card.completeness == card.completeness
        ranked.append(Ranked(ranked[-1].rank if same else len(ranked) + 1, card))
    return ranked


def percent(rate: float | None) -> str:
    """A rate as people read it: ``96.7%``, or ``—`` when there was nothing to count."""
    return "—" if rate is None else f"{rate:.1%}"


def render_ranking(registry: Registry, ranked: list[Ranked], month: str) -> str:
    """The month's 通报 as a plain-text table in Chinese."""
    start, _ = month_bounds(month)
    lines = [f"{start.year}年{start.month}月 数据报送情况通报", "",
             f"{'排名':<4}{'单位':<10}{'应报':>5}{'已报':>5}{'及时率':>9}{'完整率':>9}{'合格率':>9}{'整改率':>9}{'得分':>7}"]
    for entry in ranked:
        card = entry.card
        dept = registry.departments.get(card.department)
        name = dept.name if dept is not None else card.department
        score = "—" if card.score is None else f"{card.score:.1f}"
        lines.append(f"{entry.rank:<6}{name:<10}{card.periods_due:>6}{card.periods_delivered:>6}"
                     f"{percent(card.timeliness):>10}{percent(card.completeness):>10}{percent(card.quality):>10}"
                     f"{percent(card.correction):>10}{score:>8}")
    if not ranked:
        lines.append("（本月没有应报数据）")
    return "\n".join(lines)
