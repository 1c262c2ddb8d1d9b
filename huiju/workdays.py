"""China's working-day calendar (工作日): statutory holidays and 调休 make-up working days, the one for the platform.

Every deadline counted in working days — a delivery due "5 working days after the month ends",
the 双公示 rule (a decision published within 7 working days), escalations — goes through this
module. The official schedule comes from ``chinesecalendar`` (pinned; its data stops at
2026-12-31). A year the package does not cover yet is given by an override file
``config/calendar/<year>.yaml`` once the State Council publishes it::

    year: 2027
    holidays:                      # days off on what would be a working day (ranges: a..b)
      - 2027-01-01
      - 2027-02-05..2027-02-11
    workdays:                      # 调休: a Saturday or Sunday that is a working day
      - 2027-02-14

An override file for a year the package covers replaces the package's year (a correction).

A day outside every known year is **never guessed**. :meth:`WorkCalendar.day_kind` answers
``"unknown"``; :meth:`WorkCalendar.is_working_day` raises :class:`CalendarGap`;
:meth:`WorkCalendar.add_working_days` (a deadline counted forward) raises :class:`CalendarGap`
when it would have to cross an unknown day, since treating it as a working day would bring the
deadline forward against the department; :meth:`WorkCalendar.working_days_between` (how late
a department is) does not count unknown days, which errs on the department's side, and
:meth:`WorkCalendar.unknown_years` lists what is missing so the monitoring run and
``huiju check-config`` can say so to stewards.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import chinese_calendar
import yaml
from pydantic import ValidationError, field_validator

from huiju.registry import ConfigError
from huiju.schema import StrictModel, explain, format_loc, load_yaml
from huiju.settings import get_settings

if TYPE_CHECKING:
    import psycopg

DayKind = Literal["working", "off", "unknown"]
#: The years the pinned chinesecalendar package holds (1.11.0: 2004-2026).
PACKAGE_YEARS = frozenset(range(2004, 2027))


class CalendarGap(LookupError):
    """A working-day question touches days of a year no calendar holds; the answer would be a guess."""

    def __init__(self, years: Iterable[int], question: str = ""):
        self.years = tuple(sorted(set(years)))
        listed = ", ".join(str(y) for y in self.years)
        super().__init__(f"no working-day calendar for {listed}{': ' + question if question else ''}; "
                         f"add config/calendar/<year>.yaml once the State Council publishes the schedule")


def _days(entries: Iterable[str | date], where: str) -> frozenset[date]:
    out: set[date] = set()
    for entry in entries:
        if isinstance(entry, date):
            out.add(entry)
            continue
        text = str(entry).strip()
        first, _, last = text.partition("..")
        try:
            start = date.fromisoformat(first.strip())
            end = date.fromisoformat(last.strip()) if last else start
        except ValueError:
            raise ValueError(f"{where}: {text!r} is not a date (YYYY-MM-DD) or a range (YYYY-MM-DD..YYYY-MM-DD)")\
                from None
        if end < start:
            raise ValueError(f"{where}: range {text!r} ends before it starts")
        out.update(start + timedelta(days=i) for i in range((end - start).days + 1))
    return frozenset(out)


class CalendarYear(StrictModel):
    """One year's schedule from ``config/calendar/<year>.yaml``: the days off and the 调休 working days."""

    year: int
    holidays: tuple[str | date, ...] = ()
    workdays: tuple[str | date, ...] = ()

    @field_validator("holidays", "workdays")
    @classmethod
    def _dates_or_ranges(cls, value: tuple[str | date, ...]) -> tuple[str | date, ...]:
        _days(value, "entry")
        return value

    def holiday_dates(self) -> frozenset[date]:
        """Every day off the file lists (ranges expanded)."""
        return _days(self.holidays, "holidays")

    def workday_dates(self) -> frozenset[date]:
        """Every 调休 working day the file lists."""
        return _days(self.workdays, "workdays")


def load_overrides(directory: Path) -> dict[int, CalendarYear]:
    """The override files in ``directory`` (``<year>.yaml``), validated; a mistake names the file and key."""
    years: dict[int, CalendarYear] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        try:
            loaded = CalendarYear.model_validate(load_yaml(path.read_text(encoding="utf-8")) or {})
        except ValidationError as exc:
            problems += [f"{path.name}: {format_loc(tuple(e['loc']))}: {explain(e, CalendarYear)}"
                         for e in exc.errors()]
            continue
        except (yaml.YAMLError, ValueError) as exc:  # PyYAML reads 2027-13-01 as a date and fails on it
            problems.append(f"{path.name}: not a valid calendar file: {exc} (dates are YYYY-MM-DD)")
            continue
        wrong = sorted(d for d in loaded.holiday_dates() | loaded.workday_dates() if d.year != loaded.year)
        if str(loaded.year) != path.stem:
            problems.append(f"{path.name}: year: {loaded.year} must match the file name")
        elif wrong:
            problems.append(f"{path.name}: {wrong[0]} is not in {loaded.year}")
        elif loaded.holiday_dates() & loaded.workday_dates():
            problems.append(f"{path.name}: {min(loaded.holiday_dates() & loaded.workday_dates())} is listed as both "
                            "a holiday and a working day")
        else:
            years[loaded.year] = loaded
    if problems:
        raise ConfigError([f"config/calendar/{p}" for p in problems])
    return years


@dataclass(frozen=True)
class WorkCalendar:
    """The working days of every known year: the package's, replaced or extended by override files."""

    holidays: frozenset[date]
    workdays: frozenset[date]
    years: frozenset[int]

    @classmethod
    def build(cls, overrides: dict[int, CalendarYear] | None = None) -> WorkCalendar:
        """The package's years with ``overrides`` (year → schedule) on top."""
        overrides = overrides or {}
        holidays = {d for d in chinese_calendar.constants.holidays if d.year not in overrides}
        workdays = {d for d in chinese_calendar.constants.workdays if d.year not in overrides}
        for year in overrides.values():
            holidays |= year.holiday_dates()
            workdays |= year.workday_dates()
        return cls(frozenset(holidays), frozenset(workdays), frozenset(PACKAGE_YEARS | set(overrides)))

    def knows(self, day: date) -> bool:
        """Whether ``day``'s year is in the package or an override file."""
        return day.year in self.years

    def day_kind(self, day: date) -> DayKind:
        """``working``, ``off`` (weekend or holiday), or ``unknown`` (a year no calendar holds)."""
        if day.year not in self.years:
            return "unknown"
        if day in self.workdays:
            return "working"
        if day in self.holidays or day.weekday() >= 5:
            return "off"
        return "working"

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day; :class:`CalendarGap` when its year is unknown."""
        kind = self.day_kind(day)
        if kind == "unknown":
            raise CalendarGap([day.year], f"is {day} a working day?")
        return kind == "working"

    @functools.cached_property
    def _working_days(self) -> list[date]:
        """Every working day of every known year, in order: deadlines are counted by bisection."""
        return [day for day, kind in self.known_days() if kind == "working"]

    def _first_unknown_year(self, year: int) -> int:
        while year in self.years:
            year += 1
        return year

    def add_working_days(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start`` (``n`` = 0: ``start`` itself if working, else the next one).

        Raises :class:`CalendarGap` when the count reaches an unknown day: counting it as a working
        day would make the deadline earlier than it may be, and skipping a whole unknown year is no answer.
        """
        if n < 0:
            raise ValueError("n must be ≥ 0 (count forward)")
        days = self._working_days
        first = start if n == 0 else start + timedelta(days=1)
        index = bisect.bisect_left(days, first) + max(n - 1, 0)
        unknown = self._first_unknown_year(first.year)
        if index >= len(days) or days[index].year >= unknown:
            raise CalendarGap([unknown], f"{n} working day(s) after {start}")
        return days[index]

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when ``end`` ≤ ``start``).

        Unknown days are not counted: how late a department is never grows by a guess.
        """
        if end <= start:
            return 0
        return bisect.bisect_right(self._working_days, end) - bisect.bisect_right(self._working_days, start)

    def working_days_from(self, start: date, end: date) -> list[date]:
        """The known working days from ``start`` to ``end``, both included."""
        days = self._working_days
        return days[bisect.bisect_left(days, start):bisect.bisect_right(days, end)]

    def last_working_day(self, day: date) -> date:
        """``day`` if it is a working day, else the known working day before it."""
        days = self._working_days
        index = bisect.bisect_right(days, day) - 1
        if index < 0:
            raise CalendarGap([day.year], f"the working day before {day}")
        return days[index]

    def known_days(self) -> Iterable[tuple[date, DayKind]]:
        """Every day of every known year with its kind (``working`` or ``off``), in order."""
        for year in sorted(self.years):
            day = date(year, 1, 1)
            while day.year == year:
                yield day, self.day_kind(day)
                day += timedelta(days=1)

    def unknown_years(self, start: date, end: date) -> tuple[int, ...]:
        """The years between ``start`` and ``end`` (inclusive) that no calendar holds."""
        return tuple(y for y in range(start.year, end.year + 1) if y not in self.years)


@functools.cache
def _calendar_of(directory: Path, stamp: tuple[tuple[str, float], ...]) -> WorkCalendar:
    return WorkCalendar.build(load_overrides(directory))


def work_calendar(config_dir: Path | None = None) -> WorkCalendar:
    """The platform's calendar: the package with ``<config>/calendar/*.yaml`` (reloaded when a file changes)."""
    directory = (config_dir or get_settings().config_dir) / "calendar"
    stamp = tuple((p.name, p.stat().st_mtime) for p in sorted(directory.glob("*.yaml"))) if directory.is_dir() else ()
    return _calendar_of(directory, stamp)


def is_working_day(day: date) -> bool:
    """Whether ``day`` is a working day in the platform's calendar (:class:`CalendarGap` if unknown)."""
    return work_calendar().is_working_day(day)


def add_working_days(start: date, n: int) -> date:
    """The ``n``-th working day after ``start`` in the platform's calendar (:meth:`WorkCalendar.add_working_days`)."""
    return work_calendar().add_working_days(start, n)


def working_days_between(start: date, end: date) -> int:
    """Working days in (``start``, ``end``] in the platform's calendar; unknown days not counted."""
    return work_calendar().working_days_between(start, end)


def calendar_warnings(today: date, horizon_days: int = 60, config_dir: Path | None = None) -> list[str]:
    """What stewards must hear: years within ``horizon_days`` of ``today`` that no calendar holds (Chinese).

    Raises :class:`~huiju.registry.ConfigError` when an override file is wrong.
    """
    missing = work_calendar(config_dir).unknown_years(today, today + timedelta(days=horizon_days))
    return [f"工作日历缺少{year}年的法定节假日和调休安排：涉及{year}年的报送截止日期无法计算。"
            f"请在国务院办公厅发布通知后添加 config/calendar/{year}.yaml。" for year in missing]


def sync_work_calendar(conn: psycopg.Connection, cal: WorkCalendar | None = None) -> int:
    """Write every known day of ``cal`` (default: the platform's) into ``ops.work_calendar``; return rows changed.

    The warehouse's copy of this calendar (migration 131), which ``ops.add_working_days`` counts on:
    one transaction, idempotent — days whose kind changed are updated, new days added, days of a year
    no longer known removed, the rest left alone. Run at bootstrap (:func:`huiju.warehouse.migrate`)
    and by every monitoring run, so an override file added for a new year reaches SQL within the hour.
    """
    cal = cal or work_calendar()
    with conn.transaction(), conn.cursor() as cur:
        # on commit drop: gone with the transaction; "if not exists" + truncate: twice in one outer transaction
        cur.execute("create temporary table if not exists work_calendar_new (day date primary key, kind text not null)"
                    " on commit drop")
        cur.execute("truncate work_calendar_new")
        with cur.copy("copy work_calendar_new (day, kind) from stdin") as copy:
            for day, kind in cal.known_days():
                copy.write_row((day, kind))
        cur.execute("delete from ops.work_calendar c where not exists"
                    " (select 1 from work_calendar_new n where n.day = c.day)")
        changed = cur.rowcount
        cur.execute("insert into ops.work_calendar (day, kind) select day, kind from work_calendar_new"
                    " on conflict (day) do update set kind = excluded.kind"
                    " where ops.work_calendar.kind is distinct from excluded.kind")
        return changed + cur.rowcount
