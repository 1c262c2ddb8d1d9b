"""The working-day calendar in the warehouse (migration 131): ``ops.work_calendar`` written from huiju.workdays by
``sync_work_calendar``, and ``ops.add_working_days`` counting exactly as the Python calendar does — across the
2026 Spring Festival and its 调休 Saturday — and answering null, never a guess, across a year no calendar holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import psycopg
import pytest

from huiju.workdays import CalendarGap, CalendarYear, WorkCalendar, sync_work_calendar

CALENDAR = WorkCalendar.build()


@pytest.fixture(scope="module")
def conn(make_database) -> Iterator[psycopg.Connection]:
    """A warehouse of its own: the tests rewrite its calendar."""
    url = make_database("cal", migrated=True)
    with psycopg.connect(url, autocommit=True) as connection:
        yield connection


def add_in_sql(conn: psycopg.Connection, start: date, n: int) -> date | None:
    return conn.execute("select ops.add_working_days(%s, %s)", (start, n)).fetchone()[0]


def test_the_bootstrap_writes_every_known_day(conn: psycopg.Connection) -> None:
    count, first, last = conn.execute("select count(*), min(day), max(day) from ops.work_calendar").fetchone()
    assert (first, last) == (date(2004, 1, 1), date(2026, 12, 31))
    assert count == (last - first).days + 1
    assert conn.execute("select kind from ops.work_calendar where day = '2026-02-14'").fetchone()[0] == "working"


def test_add_working_days_in_sql_equals_the_python_calendar(conn: psycopg.Connection) -> None:
    sync_work_calendar(conn, CALENDAR)
    # January to March 2026: New Year, the Spring Festival week (15–23 Feb) and the 调休 Saturdays 14 and 28 Feb.
    starts = [date(2026, 1, 1) + timedelta(days=i) for i in range(90)]
    for n in (0, 1, 5, 7):
        expected = [CALENDAR.add_working_days(start, n) for start in starts]
        got = conn.execute("select ops.add_working_days(d::date, %s) from unnest(%s::date[]) with ordinality as t(d, i)"
                           " order by i", (n, starts)).fetchall()
        assert [row[0] for row in got] == expected, n
    assert add_in_sql(conn, date(2026, 2, 13), 1) == date(2026, 2, 14)   # the 调休 Saturday is a working day
    assert add_in_sql(conn, date(2026, 2, 6), 7) == date(2026, 2, 24)    # the festival week is not counted


def test_null_across_a_year_no_calendar_holds(conn: psycopg.Connection) -> None:
    sync_work_calendar(conn, CALENDAR)
    with pytest.raises(CalendarGap):
        CALENDAR.add_working_days(date(2026, 12, 28), 7)
    assert add_in_sql(conn, date(2026, 12, 28), 7) is None
    assert add_in_sql(conn, date(2026, 12, 28), 3) == date(2026, 12, 31)
    assert add_in_sql(conn, date(2027, 3, 1), 0) is None
    assert add_in_sql(conn, date(2026, 3, 2), -1) is None


def test_an_override_year_reaches_sql_and_the_sync_is_idempotent(conn: psycopg.Connection) -> None:
    sync_work_calendar(conn, CALENDAR)
    assert sync_work_calendar(conn, CALENDAR) == 0                      # nothing changed: nothing written
    with_2028 = WorkCalendar.build({2028: CalendarYear(year=2028, holidays=("2028-01-03",))})
    sync_work_calendar(conn, with_2028)
    assert add_in_sql(conn, date(2027, 12, 28), 7) is None              # 2027 still unknown, 2028 known beyond it
    with_2027 = WorkCalendar.build({2027: CalendarYear(year=2027, holidays=("2027-01-01",), workdays=("2027-01-02",))})
    assert sync_work_calendar(conn, with_2027) == 365 + 366                # 2027 added, 2028 gone
    assert add_in_sql(conn, date(2026, 12, 28), 7) == with_2027.add_working_days(date(2026, 12, 28), 7)
    assert conn.execute("select count(*) from ops.work_calendar where day >= '2028-01-01'").fetchone()[0] == 0
    sync_work_calendar(conn, CALENDAR)
