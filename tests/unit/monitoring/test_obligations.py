"""Obligations (huiju.monitoring.obligations): defaults from cadence and channel, periods and their keys, deadlines
in working days, receive windows; the leader's address for escalations."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from huiju.monitoring.obligations import OPEN_END, obligations, periods_between, rule_of
from huiju.notices import Recipient, leader_recipients
from huiju.registry import Obligation
from huiju.workdays import WorkCalendar
from tests.support.deliveries import registry, source

CAL = WorkCalendar.build()


def test_defaults_from_cadence_and_channel() -> None:
    monthly = rule_of(source("a", "d", cadence="monthly"))
    assert (monthly.period, monthly.due_working_days, monthly.continuous) == ("month", 5, False)
    assert rule_of(source("b", "d", cadence="quarterly")).due_working_days == 10
    live = rule_of(source("c", "d", cadence="daily", channel="rest", silence_working_days=2))
    assert (live.period, live.continuous, live.due_working_days) == ("day", True, 2)
    assert rule_of(source("d", "d", cadence="weekly", period="month", due_working_days=3)).period == "month"
    assert rule_of(source("e", "d", enabled=False)) is None
    cron = rule_of(source("f", "d", cadence="0 8 1,16 * *"))
    assert (cron.period, cron.cron) == ("cron", "0 8 1,16 * *")


def test_obligation_keys_are_checked() -> None:
    with pytest.raises(ValidationError):
        Obligation(due_working_days=-1)
    with pytest.raises(ValidationError):
        Obligation(period="fortnight")


@pytest.mark.parametrize(("cadence", "first", "last", "keys"), [
    ("weekly", date(2026, 12, 28), date(2027, 1, 10), ["2026-W53", "2027-W01"]),
    ("monthly", date(2026, 1, 15), date(2026, 3, 31), ["2026-01", "2026-02", "2026-03"]),
    ("quarterly", date(2026, 1, 1), date(2026, 12, 30), ["2026-Q1", "2026-Q2", "2026-Q3"]),
    ("daily", date(2026, 9, 30), date(2026, 10, 10), ["2026-09-30", "2026-10-08", "2026-10-09", "2026-10-10"]),
    ("0 8 1,16 * *", date(2026, 3, 1), date(2026, 4, 14), ["2026-03-01", "2026-03-16"]),
])
def test_periods(cadence: str, first: date, last: date, keys: list[str]) -> None:
    rule = rule_of(source("s", "d", cadence=cadence))
    assert [p.key for p in periods_between(rule, first, last, CAL)] == keys


def test_period_labels() -> None:
    labels = {cadence: periods_between(rule_of(source("s", "d", cadence=cadence)), date(2026, 11, 2),
                                       date(2026, 12, 31), CAL)[0].label()
              for cadence in ("monthly", "quarterly", "weekly", "daily")}
    assert labels == {"monthly": "2026年11月", "quarterly": "2026年第4季度",
                      "weekly": "2026年第45周（2026-11-02至2026-11-08）", "daily": "2026-11-02"}


def test_deadlines_and_receive_windows() -> None:
    reg = registry([source("m", "d1", cadence="monthly", since=date(2026, 9, 1), grace_working_days=2),
                    source("r", "d2", cadence="daily", channel="rest", since=date(2026, 11, 27))])
    owed = obligations(reg, date(2026, 12, 7), cal=CAL)
    by_key = {(d.rule.source_id, d.period.key): d for d in owed.dues}
    september = by_key[("m", "2026-09")]
    assert (september.due_date, september.late_after) == (date(2026, 10, 13), date(2026, 10, 15))
    assert (september.receive_from, september.receive_to) == (date(2026, 10, 1), date(2026, 10, 31))
    assert by_key[("m", "2026-11")].receive_to == OPEN_END
    friday = by_key[("r", "2026-11-27")]
    assert (friday.receive_from, friday.receive_to, friday.due_date) == \
        (date(2026, 11, 27), date(2026, 11, 29), date(2026, 11, 30))
    assert owed.calendar_gaps == {2027}  # within a month of the day: stewards are told


def test_leader_recipients() -> None:
    reg = registry([source("m", "d1")])
    assert leader_recipients(reg, "d1") == [Recipient("email", "d1-leader@example.gov.cn")]
    assert leader_recipients(registry([source("m", "d1")], leader=False), "d1") == []
    assert leader_recipients(reg, "nobody") == []
