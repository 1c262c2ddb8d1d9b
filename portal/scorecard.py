"""The department's scorecard (报送考核) on its history page: last month's figures from the core's monitoring.

The figures are :func:`huiju.monitoring.scorecards.scorecards` for the department over the last
complete month (periods ending in it): 报送及时率, 完整率, 数据合格率, 问题数据整改率, per data item
and in total; its place in the month's 通报 (:func:`huiju.monitoring.scorecards.ranking`); and how
many 催报 notices (reminders, overdue notices, escalations) it received that month. They come from
the submission ledger, which the ingest path and the ``huiju_monitor`` DAG keep current.
``templates/_scorecard.html`` shows them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from datetime import date, timedelta

import psycopg

from huiju.monitoring.ledger import today
from huiju.monitoring.scorecards import Scorecard, month_bounds, percent, ranking, scorecards
from huiju.registry import Registry


@dataclass(frozen=True)
class SourceLine:
    """One data item's line of the card."""

    title: str
    card: Scorecard


@dataclass(frozen=True)
class DepartmentScorecard:
    """A department's month: its total, each data item, its rank, the 催报 notices it received."""

    month: str
    label: str  # 2026年11月
    total: Scorecard
    sources: list[SourceLine]
    rank: int | None
    ranked: int  # departments in the month's 通报
    reminders: int

    @staticmethod
    def percent(rate: float | None) -> str:
        """A rate as shown: ``96.7%`` or ``—``."""
        return percent(rate)


def monitoring_available() -> bool:
    """Whether the core's monitoring package is installed in this build."""
    return importlib.util.find_spec("huiju.monitoring") is not None


def last_complete_month(day: date) -> str:
    """The month before ``day``'s: ``2026-11`` on any day of December 2026."""
    previous = day.replace(day=1) - timedelta(days=1)
    return f"{previous.year}-{previous.month:02d}"


def department_scorecard(conn: psycopg.Connection, registry: Registry, department: str,
                         month: str | None = None) -> DepartmentScorecard:
    """The department's scorecard for ``month`` (default: the last complete month)."""
    month = month or last_complete_month(today())
    cards = scorecards(conn, month, department)
    total = next((c for c in cards if c.source_id is None), Scorecard(month, department, None, 0, 0, 0, 0, 0, 0, 0))
    lines = [SourceLine(registry.sources[c.source_id].title if c.source_id in registry.sources else c.source_id, c)
             for c in cards if c.source_id is not None]
    ranked = ranking(conn, month)
    rank = next((r.rank for r in ranked if r.card.department == department), None)
    start, following = month_bounds(month)
    reminders = conn.execute(
        "select count(*) from ops.notices where department = %s and kind in"
        " ('monitor_remind', 'monitor_overdue', 'monitor_escalate')"
        " and (created_at at time zone 'Asia/Shanghai')::date >= %s"
        " and (created_at at time zone 'Asia/Shanghai')::date < %s", (department, start, following)).fetchone()[0]
    return DepartmentScorecard(month, f"{start.year}年{start.month}月", total, lines, rank, len(ranked), reminders)
