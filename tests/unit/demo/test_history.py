"""The demo's earlier weeks: which day the missing department skipped, and which days each source delivered."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from huiju_demo.history import ANOMALY_SOURCE, ANOMALY_WEEKS, MISSING_SOURCE, history_days, missed_day

from huiju.monitoring.obligations import rule_of
from huiju.registry import load_registry
from huiju.workdays import work_calendar


@pytest.mark.parametrize("day", [date(2026, 11, 20), date(2026, 12, 6), date(2026, 10, 9), date(2026, 12, 1)])
def test_the_missed_day_is_overdue_long_enough_to_reach_the_leader(day: date) -> None:
    registry, cal = load_registry(), work_calendar()
    as_of = day + timedelta(days=1)
    missed, days = history_days(registry, day, as_of, cal)
    rule = rule_of(registry.source(MISSING_SOURCE))
    late_after = cal.add_working_days(cal.add_working_days(missed, rule.due_working_days), rule.grace_working_days)
    assert cal.working_days_between(late_after, as_of) >= rule.escalate_after_working_days
    assert cal.is_working_day(missed) and cal.is_working_day(missed + timedelta(days=1))
    # The overdue notice's first day comes before the leader's: the demo's monitor runs on both.
    assert missed_day(registry, as_of, cal) == (missed, late_after + timedelta(days=1))
    assert cal.working_days_between(late_after, late_after + timedelta(days=1)) < rule.escalate_after_working_days
    # Every other working day before the demo day was delivered, from well before the gap.
    delivered = days[MISSING_SOURCE]
    assert missed not in delivered and delivered[0] < missed < delivered[-1] < day
    assert set(delivered) | {missed} == set(cal.working_days_from(delivered[0], day - timedelta(days=1)))
    # The anomaly source delivered every day for five weeks: five batches of the demo day's weekday.
    anomaly = days[ANOMALY_SOURCE]
    assert anomaly == [day - timedelta(days=n) for n in range(7 * ANOMALY_WEEKS, 0, -1)]
    assert sum(d.weekday() == day.weekday() for d in anomaly) == ANOMALY_WEEKS


def test_the_same_day_gives_the_same_history() -> None:
    registry = load_registry()
    day = date(2026, 11, 20)
    assert history_days(registry, day, day + timedelta(days=1)) == history_days(registry, day, day + timedelta(days=1))
