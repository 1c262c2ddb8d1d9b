"""Submission obligations (报送义务): which period each source owes, and by when, in Chinese working days.

A source's ``obligation:`` block (:class:`huiju.registry.Obligation`, every key defaulted from its
``cadence`` and channel) is resolved into a :class:`Rule`; :func:`obligations` lists every period a
source owes up to a day, each a :class:`Due` with its deadline (``due_date``), the last day that still
counts as on time (``late_after``: the deadline plus the grace period) and the days whose deliveries
count for it (``receive_from`` … ``receive_to``).

Which period a delivery covers:

* **periodic** sources (files, the portal) deliver a period after it ends: a batch received on day
  *r* covers the latest period that ended before *r* (a monthly report received on 3 December covers
  November; a daily file received on Monday covers Friday, the last working day). A corrected
  resubmission counts for the period of the batch it corrects.
* **continuous** sources (rest, soap, frontdb) owe data on every working day; a batch received on
  day *r* counts for *r* (or the last working day before it).

Daily periods are working days only: a department owes nothing for a holiday. Every deadline is
counted with :mod:`huiju.workdays`; one that falls in a year no calendar holds has ``due_date`` None
and its year is reported in :attr:`Obligations.calendar_gaps` — never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from huiju.registry import CONTINUOUS_CHANNELS, Registry, Source
from huiju.settings import TIMEZONE
from huiju.workdays import CalendarGap, WorkCalendar, work_calendar

PERIOD_OF_CADENCE = {"daily": "day", "weekly": "week", "monthly": "month", "quarterly": "quarter"}
DEFAULT_DUE_WORKING_DAYS = {"day": 1, "week": 2, "month": 5, "quarter": 10, "cron": 1}
#: The last day of an open receive window (the latest period's, until the next one ends).
OPEN_END = date(9999, 12, 31)


@dataclass(frozen=True)
class Rule:
    """A source's obligation with every default resolved."""

    source_id: str
    department: str
    dataset: str
    title: str
    continuous: bool
    period: str  # day | week | month | quarter | cron
    cron: str | None
    due_working_days: int
    grace_working_days: int
    remind_before_working_days: int
    escalate_after_working_days: int
    since: date | None


@dataclass(frozen=True)
class Period:
    """The time one delivery covers: ``key`` (``2026-12-04``, ``2026-W49``, ``2026-11``, ``2026-Q4``) and its days."""

    key: str
    start: date
    end: date

    def label(self) -> str:
        """The period in Chinese: ``2026年11月``, ``2026年第4季度``, ``2026年第49周``, ``2026-12-04``."""
        if "-Q" in self.key:
            return f"{self.key[:4]}年第{self.key[-1]}季度"
        if "-W" in self.key:
            return f"{self.key[:4]}年第{int(self.key[6:])}周（{self.start}至{self.end}）"
        if len(self.key) == 7:
            return f"{self.key[:4]}年{int(self.key[5:])}月"
        return self.key if self.start == self.end else f"{self.start}至{self.end}"


@dataclass(frozen=True)
class Due:
    """One period a source owes: its deadline (None when the calendar does not know it) and its receive window."""

    rule: Rule
    period: Period
    due_date: date | None
    late_after: date | None
    receive_from: date
    receive_to: date


@dataclass
class Obligations:
    """Every period owed, and the years whose working days no calendar holds (to tell stewards)."""

    dues: list[Due] = field(default_factory=list)
    calendar_gaps: set[int] = field(default_factory=set)


def rule_of(source: Source) -> Rule | None:
    """The source's obligation with defaults resolved; None when monitoring is switched off for it."""
    ob = source.obligation
    if not ob.enabled:
        return None
    continuous = ob.mode == "continuous" or (ob.mode is None and source.channel in CONTINUOUS_CHANNELS)
    cron = None
    if continuous:
        period = "day"
    elif ob.period is not None:
        period = ob.period
    elif source.cadence in PERIOD_OF_CADENCE:
        period = PERIOD_OF_CADENCE[source.cadence]
    else:
        period, cron = "cron", source.cadence
    due = ob.silence_working_days if continuous else (
        ob.due_working_days if ob.due_working_days is not None else DEFAULT_DUE_WORKING_DAYS[period])
    return Rule(source_id=source.id, department=source.department, dataset=source.dataset, title=source.title,
                continuous=continuous, period=period, cron=cron, due_working_days=due,
                grace_working_days=ob.grace_working_days, remind_before_working_days=ob.remind_before_working_days,
                escalate_after_working_days=ob.escalate_after_working_days, since=ob.since)


def period_containing(rule: Rule, day: date, cal: WorkCalendar) -> Period:
    """The period of ``rule`` that ``day`` falls in (a daily period: the last working day up to ``day``)."""
    if rule.period == "day":
        d = cal.last_working_day(day)
        return Period(d.isoformat(), d, d)
    if rule.period == "week":
        start = day - timedelta(days=day.weekday())
        iso = start.isocalendar()
        return Period(f"{iso.year}-W{iso.week:02d}", start, start + timedelta(days=6))
    if rule.period == "month":
        start = day.replace(day=1)
        following = (start + timedelta(days=32)).replace(day=1)
        return Period(f"{day.year}-{day.month:02d}", start, following - timedelta(days=1))
    if rule.period == "quarter":
        quarter = (day.month - 1) // 3
        start = date(day.year, quarter * 3 + 1, 1)
        following = date(day.year + (quarter == 3), (quarter * 3 + 3) % 12 + 1, 1)
        return Period(f"{day.year}-Q{quarter + 1}", start, following - timedelta(days=1))
    zone = ZoneInfo(TIMEZONE)
    moment = datetime.combine(day, time(23, 59, 59), zone)
    fired = croniter(rule.cron, moment).get_prev(datetime).date()
    following = croniter(rule.cron, datetime.combine(fired, time(23, 59, 59), zone)).get_next(datetime).date()
    return Period(fired.isoformat(), fired, following - timedelta(days=1))


def _next_period(rule: Rule, period: Period, cal: WorkCalendar) -> Period:
    return period_containing(rule, period.end + timedelta(days=1), cal)


def periods_between(rule: Rule, first: date, last: date, cal: WorkCalendar) -> list[Period]:
    """The periods from the one containing ``first`` to the last one that has ended by ``last`` (inclusive).

    Daily periods are the known working days (a holiday, or a day of a year no calendar holds, owes nothing).
    """
    if rule.period == "day":
        start = cal.last_working_day(first)
        return [Period(d.isoformat(), d, d) for d in cal.working_days_from(start, last)]
    out: list[Period] = []
    period = period_containing(rule, first, cal)
    while period.end <= last:
        out.append(period)
        period = _next_period(rule, period, cal)
    return out


def first_period_day(rule: Rule, first_delivery: date | None, as_of: date) -> date:
    """The day whose period is the first one owed: ``since``, else the first delivery's period, else the latest."""
    if rule.since is not None:
        return rule.since
    received = first_delivery or as_of
    return received if rule.continuous else received - timedelta(days=1)


def recent_since(rule: Rule, as_of: date, days_late: int) -> date:
    """The first period end that can still be pending or at most ``days_late`` days late on ``as_of``.

    Working days are turned into calendar days generously (×2, plus a week for the longest holiday).
    """
    return as_of - timedelta(days=days_late + 2 * (rule.due_working_days + rule.grace_working_days) + 7)


def obligations(registry: Registry, as_of: date, *, first_delivery: Mapping[str, date] | None = None,
                source_ids: Iterable[str] | None = None, cal: WorkCalendar | None = None,
                recent_days: int | None = None) -> Obligations:
    """Every period each source owes that has ended before ``as_of``, with deadlines.

    ``first_delivery`` (source id → the Asia/Shanghai date of its first batch) sets where a source
    without ``since`` starts owing; ``source_ids`` limits the sources (default: all); ``recent_days``
    keeps only the periods that can be pending or at most that many days late (:func:`recent_since`).
    """
    cal = cal or work_calendar()
    first_delivery = first_delivery or {}
    wanted = set(source_ids) if source_ids is not None else None
    result = Obligations()
    deadlines: dict[tuple[date, int, int], tuple[date | None, date | None]] = {}

    def deadline(end: date, due: int, grace: int) -> tuple[date | None, date | None]:
        key = (end, due, grace)
        if key not in deadlines:
            try:
                due_date = cal.add_working_days(end, due)
                deadlines[key] = (due_date, cal.add_working_days(due_date, grace))
            except CalendarGap as gap:
                result.calendar_gaps.update(gap.years)
                deadlines[key] = (None, None)
        return deadlines[key]

    yesterday = as_of - timedelta(days=1)
    for source in registry.sources.values():
        if wanted is not None and source.id not in wanted:
            continue
        rule = rule_of(source)
        if rule is None:
            continue
        start = first_period_day(rule, first_delivery.get(source.id), as_of)
        periods = periods_between(rule, start, yesterday, cal)
        oldest = recent_since(rule, as_of, recent_days) if recent_days is not None else None
        for index, period in enumerate(periods):
            if oldest is not None and period.end < oldest:
                continue
            following = periods[index + 1] if index + 1 < len(periods) else None
            if rule.continuous:
                receive_from = period.start
                receive_to = following.start - timedelta(days=1) if following else OPEN_END
            else:
                receive_from = period.end + timedelta(days=1)
                receive_to = following.end if following else OPEN_END
            due_date, late_after = deadline(period.end, rule.due_working_days, rule.grace_working_days)
            result.dues.append(Due(rule, period, due_date, late_after, receive_from, receive_to))
    result.calendar_gaps.update(cal.unknown_years(as_of, as_of + timedelta(days=31)))
    return result
