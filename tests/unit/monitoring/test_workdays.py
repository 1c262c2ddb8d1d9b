"""Working-day arithmetic (huiju.workdays) on the official 2026 schedule, year ends, and 2027 without and with
an override file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from huiju.registry import ConfigError
from huiju.workdays import CalendarGap, WorkCalendar, load_overrides

PACKAGE = WorkCalendar.build()


def test_a_saturday_that_is_a_working_day() -> None:
    # 2026-02-14 (Saturday) and 2026-02-28 (Saturday) are 调休 working days around the Spring Festival.
    assert date(2026, 2, 14).weekday() == 5
    assert PACKAGE.is_working_day(date(2026, 2, 14))
    assert PACKAGE.is_working_day(date(2026, 2, 28))
    assert not PACKAGE.is_working_day(date(2026, 2, 7))  # an ordinary Saturday


def test_spring_festival_week() -> None:
    assert [PACKAGE.day_kind(date(2026, 2, d)) for d in range(13, 25)] == [
        "working", "working",                                        # Fri 13, Sat 14 (调休)
        *["off"] * 9,                                                # 15 … 23: 春节
        "working"]                                                   # Tue 24
    # Five working days after Fri 13 Feb: Sat 14, Tue 24, Wed 25, Thu 26, Fri 27.
    assert PACKAGE.add_working_days(date(2026, 2, 13), 5) == date(2026, 2, 27)
    assert PACKAGE.working_days_between(date(2026, 2, 13), date(2026, 2, 27)) == 5


def test_national_day_and_the_working_saturday_after_it() -> None:
    assert PACKAGE.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert PACKAGE.is_working_day(date(2026, 10, 10))  # a Saturday worked for the Golden Week


def test_zero_days_is_the_day_itself_or_the_next_working_day() -> None:
    assert PACKAGE.add_working_days(date(2026, 3, 2), 0) == date(2026, 3, 2)
    assert PACKAGE.add_working_days(date(2026, 5, 1), 0) == date(2026, 5, 6)


def test_year_end_into_a_year_the_package_does_not_hold() -> None:
    assert PACKAGE.add_working_days(date(2026, 12, 25), 4) == date(2026, 12, 31)
    assert PACKAGE.day_kind(date(2027, 1, 4)) == "unknown"
    with pytest.raises(CalendarGap) as gap:
        PACKAGE.add_working_days(date(2026, 12, 25), 5)  # would need a day of 2027: never guessed
    assert gap.value.years == (2027,)
    with pytest.raises(CalendarGap):
        PACKAGE.is_working_day(date(2027, 3, 1))
    # How late someone is never grows by a guess: unknown days are not counted.
    assert PACKAGE.working_days_between(date(2026, 12, 30), date(2027, 1, 10)) == 1
    assert PACKAGE.unknown_years(date(2026, 12, 1), date(2027, 2, 1)) == (2027,)


def test_2027_from_an_override_file(tmp_path: Path) -> None:
    (tmp_path / "2027.yaml").write_text(
        "year: 2027\nholidays: [2027-01-01, 2027-02-05..2027-02-11]\nworkdays: [2027-02-14, 2027-01-02]\n",
        encoding="utf-8")
    cal = WorkCalendar.build(load_overrides(tmp_path))
    assert cal.unknown_years(date(2026, 12, 1), date(2027, 12, 31)) == ()
    assert cal.day_kind(date(2027, 1, 1)) == "off"
    assert cal.day_kind(date(2027, 1, 2)) == "working"  # a Saturday listed as 调休
    assert cal.add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 2)
    assert cal.add_working_days(date(2027, 2, 4), 1) == date(2027, 2, 12)
    assert cal.day_kind(date(2028, 1, 3)) == "unknown"


def test_an_override_replaces_the_package_year(tmp_path: Path) -> None:
    (tmp_path / "2026.yaml").write_text("year: 2026\nholidays: [2026-03-02]\n", encoding="utf-8")
    cal = WorkCalendar.build(load_overrides(tmp_path))
    assert cal.day_kind(date(2026, 3, 2)) == "off"
    assert cal.day_kind(date(2026, 2, 16)) == "working"  # the package's 2026 is replaced, not merged


@pytest.mark.parametrize(("text", "problem"), [
    ("year: 2027\nholidays: [2027-13-01]\n", "dates are YYYY-MM-DD"),
    ("year: 2027\nholidays: [\"2027-02-09..2027-02-01\"]\n", "ends before it starts"),
    ("year: 2028\n", "must match the file name"),
    ("year: 2027\nholidays: [2026-12-31]\n", "is not in 2027"),
    ("year: 2027\nholiday: [2027-01-01]\n", "unknown key (did you mean 'holidays'?)"),
    ("year: 2027\nholidays: [2027-01-04]\nworkdays: [2027-01-04]\n", "both"),
])
def test_a_wrong_override_file_names_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "2027.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_overrides(tmp_path)
    assert "config/calendar/2027.yaml" in str(error.value) and problem in str(error.value)
