"""The department's scorecard (报送考核) on its history page: last month's figures from the core's monitoring.

The figures are :func:`huiju.monitoring.scorecards.scorecards` for the department over the last
complete month (periods ending in it): 报送及时率, 完整率, 数据合格率, 问题数据整改率, per data item
and in total; its place in the month's 通报 (:func:`huiju.monitoring.scorecards.ranking`); and how
催报 notices (reminders, overdue notices, escalations) it received that month, each with its level,
data item, period and day (:class:`ReminderSent`). They come from
the submission ledger, which the ingest path and the ``huiju_monitor`` DAG keep current.
``templates/_scorecard.html`` shows them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from datetime import date, timedelta

import psycopg

from huiju.monitoring.ledger import today
from huiju.monitoring.reminders import LEVEL_LABELS
from huiju.monitoring.scorecards import Scorecard, month_bounds, percent, ranking, scorecards
from huiju.registry import Registry


@dataclass(frozen=True)
class SourceLine:
    """One data item's line of the card."""

    title: str
    card: Scorecard


#: The 催报 ladder's notice kinds (huiju.monitoring.reminders) and how the department sees each level.
REMINDER_LEVELS = {f"monitor_{level}": label for level, label in LEVEL_LABELS.items()}


@dataclass(frozen=True)
class ReminderSent:
    """One 催报 notice the department received: its level, data item, the period it chased, the day it was sent."""

    notice_id: int
    level: str  # remind | overdue | escalate
    level_label: str
    source_title: str
    period: str  # the period's key: 2026-12-01, 2026-W49, 2026-11, 2026-Q4
    sent_on: date


@dataclass(frozen=True)
class DepartmentScorecard:
    """A department's month: its total, each data item, its rank, the 催报 notices it received."""

    month: str
    label: str  # 2026年11月
    total: Scorecard
    sources: list[SourceLine]
    rank: int | None
    ranked: int  # departments in the month's 通报
    reminders_sent: list[ReminderSent]  # newest first

    @property
    def reminders(self) -> int:
        """How many 催报 notices it received in the month."""
        return len(self.reminders_sent)

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
    rows = conn.execute(
        "select notice_id, kind, source_id, dedupe_key, (created_at at time zone 'Asia/Shanghai')::date"
        " from ops.notices where department = %s and kind = any(%s)"
        " and (created_at at time zone 'Asia/Shanghai')::date >= %s"
        " and (created_at at time zone 'Asia/Shanghai')::date < %s order by created_at desc, notice_id desc",
        (department, list(REMINDER_LEVELS), start, following)).fetchall()
    # The period is the last part of the notice's key, monitor:<level>:<department>:<source>:<period>.
    sent = [ReminderSent(notice_id, kind.removeprefix("monitor_"), REMINDER_LEVELS[kind],
                         registry.sources[source_id].title if source_id in registry.sources else str(source_id),
                         key.rsplit(":", 1)[-1], sent_on) for notice_id, kind, source_id, key, sent_on in rows]
    return DepartmentScorecard(month, f"{start.year}年{start.month}月", total, lines, rank, len(ranked), sent)
