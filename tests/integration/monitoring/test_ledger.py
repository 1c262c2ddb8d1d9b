"""The submission ledger (ops.submissions) derived from ops.loads and ops.feedback: periods, deadlines in
working days, on time / late / missing / held, resubmissions, calendar gaps; refresh equals backfill; the monthly
summary (ops.submission_months) equals the ledger's own totals after every kind of refresh."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from huiju.monitoring.ledger import backfill, refresh
from huiju.monitoring.scorecards import scorecards_between
from tests.support.deliveries import add_load, at, registry, source

MONTHLY = source("m_report", "d01", cadence="monthly", since=date(2026, 1, 1))
DAILY = source("d_file", "d02", cadence="daily", since=date(2026, 2, 10))
LIVE = source("live_api", "d03", cadence="daily", channel="rest", since=date(2026, 9, 28))
REGISTRY = registry([MONTHLY, DAILY, LIVE])


def ledger(pg: psycopg.Connection) -> dict[tuple[str, str], dict]:
    with pg.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute("select * from ops.submissions order by source_id, period").fetchall()
    return {(r["source_id"], r["period"]): r for r in rows}


@pytest.fixture
def deliveries(pg: psycopg.Connection) -> psycopg.Connection:
    # Monthly, due 5 working days after the month ends: January (ends Sat 31) due Fri 6 Feb 2026; February
    # ends on Sat 28, a working day (调休), and is due Fri 6 March.
    add_load(pg, MONTHLY, at(date(2026, 2, 6)))                        # January on time
    add_load(pg, MONTHLY, at(date(2026, 3, 9)), rows=50)                # February late (due 6 March)
    held = add_load(pg, MONTHLY, at(date(2026, 4, 3)), rows=40, quarantined=30, status="held", feedback_rows=30)
    add_load(pg, MONTHLY, at(date(2026, 4, 20)), rows=30, resubmission_of=held, tag="fix")  # March corrected late
    partial = add_load(pg, MONTHLY, at(date(2026, 5, 6)), rows=80, quarantined=8, feedback_rows=8)
    add_load(pg, MONTHLY, at(date(2026, 5, 25)), rows=5, resubmission_of=partial, tag="fix")  # corrects 5 of 8
    # Daily over the Spring Festival: Fri 13 Feb delivered on Sat 14 (a working Saturday); Sat 14 itself is
    # owed too, due the next working day, Tue 24.
    add_load(pg, DAILY, at(date(2026, 2, 11)))                          # covers Tue 10
    add_load(pg, DAILY, at(date(2026, 2, 14)))                          # covers Fri 13 (received Sat 14)
    add_load(pg, DAILY, at(date(2026, 2, 14), 20), status="failed", tag="broken")  # failed: not counted
    # Continuous: data on 28 and 29 Sep, then silence.
    add_load(pg, LIVE, at(date(2026, 9, 28)))
    add_load(pg, LIVE, at(date(2026, 9, 29)))
    return pg


def test_periods_statuses_and_counts(deliveries: psycopg.Connection) -> None:
    refresh(deliveries, REGISTRY, as_of=date(2026, 10, 14))
    rows = ledger(deliveries)
    jan, feb, mar, apr = (rows[("m_report", f"2026-{m:02d}")] for m in (1, 2, 3, 4))
    assert (jan["due_date"], jan["status"]) == (date(2026, 2, 6), "on_time")
    assert (feb["due_date"], feb["status"], feb["rows_received"]) == (date(2026, 3, 6), "late", 50)
    assert mar["status"] == "late" and mar["batches"] == 2           # usable data only with the resubmission
    assert (mar["rows_held"], mar["feedback_rows"], mar["rows_corrected"]) == (40, 30, 30)
    assert (apr["status"], apr["rows_accepted"], apr["feedback_rows"], apr["rows_corrected"]) == ("on_time", 77, 8, 5)
    # September: National Day, then 8, 9, Sat 10 (调休), 12, 13 October.
    assert (rows[("m_report", "2026-09")]["due_date"], rows[("m_report", "2026-09")]["status"]) == \
        (date(2026, 10, 13), "missing")
    assert ("m_report", "2026-10") not in rows                       # not ended
    assert rows[("d_file", "2026-02-10")]["status"] == "on_time"
    assert rows[("d_file", "2026-02-13")]["status"] == "on_time"
    assert rows[("d_file", "2026-02-13")]["batches"] == 1            # the failed batch is not a delivery
    assert rows[("d_file", "2026-02-14")]["due_date"] == date(2026, 2, 24)   # the working Saturday owes too
    assert ("d_file", "2026-02-16") not in rows                      # 春节: nothing owed
    assert rows[("d_file", "2026-02-12")]["status"] == "missing"
    assert rows[("live_api", "2026-09-29")]["status"] == "on_time"
    assert rows[("live_api", "2026-09-30")]["status"] == "missing"   # silent since 30 Sep
    assert ("live_api", "2026-10-01") not in rows                    # National Day
    assert rows[("live_api", "2026-10-09")]["status"] == "missing"


def test_a_deadline_in_an_unknown_year_is_never_guessed(deliveries: psycopg.Connection) -> None:
    owed = refresh(deliveries, REGISTRY, [MONTHLY.id], as_of=date(2027, 1, 20))
    assert 2027 in owed.calendar_gaps
    december = ledger(deliveries)[("m_report", "2026-12")]
    assert (december["due_date"], december["status"]) == (None, "unknown")
    assert ledger(deliveries)[("m_report", "2026-11")]["due_date"] == date(2026, 12, 7)


def test_refresh_equals_backfill(deliveries: psycopg.Connection) -> None:
    day = date(2026, 10, 14)
    for src in (MONTHLY, DAILY, LIVE):
        refresh(deliveries, REGISTRY, [src.id], as_of=day)
    by_refresh = {k: {c: v for c, v in r.items() if c != "refreshed_at"} for k, r in ledger(deliveries).items()}
    backfill(deliveries, REGISTRY, as_of=day)
    by_backfill = {k: {c: v for c, v in r.items() if c != "refreshed_at"} for k, r in ledger(deliveries).items()}
    assert by_refresh == by_backfill and len(by_backfill) > 100


def test_the_hourly_refresh_of_recent_periods_equals_the_full_rebuild(deliveries: psycopg.Connection) -> None:
    day = date(2026, 10, 14)
    backfill(deliveries, REGISTRY, as_of=date(2026, 10, 13))
    owed = refresh(deliveries, REGISTRY, as_of=day, recent_days=31)
    recent = {(d.rule.source_id, d.period.key) for d in owed.dues}
    hourly = {k: {c: v for c, v in r.items() if c != "refreshed_at"} for k, r in ledger(deliveries).items()}
    backfill(deliveries, REGISTRY, as_of=day)
    full = {k: {c: v for c, v in r.items() if c != "refreshed_at"} for k, r in ledger(deliveries).items()}
    assert recent and len(recent) < len(full)
    assert {k: hourly[k] for k in recent} == {k: full[k] for k in recent}
    assert hourly.keys() == full.keys()


def assert_summary_is_the_ledgers(pg: psycopg.Connection) -> int:
    """The monthly summary (ops.submission_months) holds each department's month as the ledger's own totals."""
    first, last = pg.execute("select to_char(min(period_end), 'YYYY-MM'), to_char(max(period_end), 'YYYY-MM')"
                             " from ops.submissions").fetchone()
    from_ledger = [card for card in scorecards_between(pg, first, last) if card.source_id is None]
    assert scorecards_between(pg, first, last, by_source=False) == from_ledger
    return len(from_ledger)


def test_the_monthly_summary_follows_every_refresh(deliveries: psycopg.Connection) -> None:
    for src in (MONTHLY, DAILY, LIVE):  # after each ingest's refresh of its own source
        refresh(deliveries, REGISTRY, [src.id], as_of=date(2026, 10, 13))
        assert_summary_is_the_ledgers(deliveries)
    add_load(deliveries, DAILY, at(date(2026, 10, 12)), rows=70, quarantined=7, feedback_rows=7)
    refresh(deliveries, REGISTRY, as_of=date(2026, 10, 14), recent_days=31)  # the hourly run
    assert_summary_is_the_ledgers(deliveries)
    backfill(deliveries, REGISTRY, as_of=date(2026, 10, 15))  # the day's first run
    months = assert_summary_is_the_ledgers(deliveries)
    assert months >= 15  # three departments, most of a year
    # A source handed to another department: its months leave the old department's summary.
    moved = registry([MONTHLY, source("d_file", "d01", cadence="daily", since=date(2026, 2, 10)), LIVE])
    refresh(deliveries, moved, [DAILY.id], as_of=date(2026, 10, 15))
    assert_summary_is_the_ledgers(deliveries)
    assert not deliveries.execute("select from ops.submission_months where department = 'd02'").fetchall()
    # A warehouse migrated with a ledger already there: the migration's fill is the same computation.
    deliveries.execute("delete from ops.submission_months")
    deliveries.execute("insert into ops.submission_months select t.* from (select distinct department,"
                       " to_char(period_end, 'YYYY-MM') as month from ops.submissions) k"
                       " cross join lateral ops.submission_month_totals(k.department, k.month) t")
    assert_summary_is_the_ledgers(deliveries)
