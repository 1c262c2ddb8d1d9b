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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg.rows import dict_row

from huiju.registry import Registry

_SCORECARD = """
select department, source_id,
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
 group by grouping sets ((department, source_id), (department))
 order by department, source_id nulls first
"""


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
    start, following = month_bounds(month)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_SCORECARD, {"start": start, "next": following, "department": department}).fetchall()
    return [Scorecard(month=month, **row) for row in rows]


def ranking(conn: psycopg.Connection, month: str) -> list[Ranked]:
    """The month's 通报: departments with anything due or received, best first (equal scores share a rank)."""
    totals = [c for c in scorecards(conn, month) if c.source_id is None and (c.periods_due or c.rows_received)]

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
