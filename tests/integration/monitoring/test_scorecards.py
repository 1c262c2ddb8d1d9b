"""Scorecards (huiju.monitoring.scorecards) equal the same figures computed by plain SQL over ops.loads and
ops.feedback, for a generated year of monthly deliveries by eight departments: on time, late, missing, held
and resubmitted, partly quarantined with feedback and corrections."""

from __future__ import annotations

import random
from datetime import date, timedelta

import psycopg
import pytest

from huiju.monitoring.ledger import backfill
from huiju.monitoring.scorecards import Scorecard, ranking, render_ranking, scorecards
from huiju.workdays import WorkCalendar
from tests.support.deliveries import add_load, at, registry, source

CAL = WorkCalendar.build()
MONTHS = [f"2026-{m:02d}" for m in range(1, 12)]
AS_OF = date(2026, 12, 8)  # November is due on 7 December: every month is settled
SOURCES = [source(f"s{d}{k}", f"d{d}", cadence="monthly", since=date(2026, 1, 1), grace_working_days=k)
           for d in range(8) for k in (0, 1)]
REGISTRY = registry(SOURCES)


def month_end(month: str) -> date:
    start = date.fromisoformat(f"{month}-01")
    return (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def late_after(month: str, grace: int) -> date:
    return CAL.add_working_days(CAL.add_working_days(month_end(month), 5), grace)


@pytest.fixture
def year(pg: psycopg.Connection) -> psycopg.Connection:
    rng = random.Random(16)
    for src in SOURCES:
        grace = src.obligation.grace_working_days
        for month in MONTHS:
            first_day = month_end(month) + timedelta(days=1)
            deadline = late_after(month, grace)
            kind = rng.choices(["on_time", "late", "missing", "held", "partial"], [55, 15, 10, 8, 12])[0]
            if kind == "missing":
                continue
            # Every delivery arrives in the month after the period (the plain SQL below relies on it).
            received = first_day + timedelta(days=rng.randrange(0, (deadline - first_day).days + 1)) \
                if kind != "late" else min(deadline + timedelta(days=rng.randrange(1, 12)), first_day + timedelta(27))
            rows = rng.randrange(20, 500)
            if kind == "held":
                held = add_load(pg, src, at(received), rows=rows, quarantined=rows // 2, status="held",
                                feedback_rows=rows // 2)
                if rng.random() < 0.6:
                    add_load(pg, src, at(received + timedelta(days=rng.randrange(1, 10)), 15), rows=rows,
                             resubmission_of=held, tag="fix")
            elif kind == "partial":
                bad = rng.randrange(1, rows // 3)
                load = add_load(pg, src, at(received), rows=rows, quarantined=bad, feedback_rows=bad)
                if rng.random() < 0.7:
                    add_load(pg, src, at(received + timedelta(days=2), 16), rows=rng.randrange(1, bad + 3),
                             resubmission_of=load, tag="fix")
            else:
                add_load(pg, src, at(received), rows=rows)
            if rng.random() < 0.05:
                add_load(pg, src, at(received, 9), rows=0, status="failed", tag="broken")
    return pg


# The same figures straight from ops.loads: a batch (or its original, for a resubmission) received in month
# m+1 covers month m; late_after per source and month comes from the calendar, as a VALUES list.
PLAIN = """
with deadlines (source_id, department, period, late_after) as (select * from unnest(%s::text[], %s::text[],
                                                                                      %s::date[], %s::date[])),
b as (
    select l.source_id, l.status, l.received_at, l.rows_received, l.rows_accepted, f.rows as feedback_rows,
           least(coalesce(f.rows, 0), coalesce((select sum(r.rows_accepted) from ops.loads r
                                                 where r.resubmission_of = l.load_id
                                                   and r.status in ('validated', 'published')), 0)) as corrected,
           (date_trunc('month', coalesce(o.received_at, l.received_at) at time zone 'Asia/Shanghai')
            - interval '1 month')::date as period
      from ops.loads l left join ops.loads o on o.load_id = l.resubmission_of
      left join ops.feedback f on f.load_id = l.load_id
     where l.status <> 'failed'
),
p as (
    select d.department, d.source_id, d.period, d.late_after, count(b.status) as batches,
           min(b.received_at) filter (where b.status <> 'held') as delivered_at,
           coalesce(sum(b.rows_received), 0) as received,
           coalesce(sum(b.rows_accepted) filter (where b.status in ('validated', 'published')), 0) as accepted,
           coalesce(sum(b.feedback_rows), 0) as feedback, coalesce(sum(b.corrected), 0) as corrected
      from deadlines d left join b on b.source_id = d.source_id and b.period = d.period
     group by 1, 2, 3, 4
)
select to_char(period, 'YYYY-MM') as month, department, source_id, count(*) as due,
       count(delivered_at) as delivered,
       count(*) filter (where (delivered_at at time zone 'Asia/Shanghai')::date <= late_after) as on_time,
       sum(received)::bigint, sum(accepted)::bigint, sum(feedback)::bigint, sum(corrected)::bigint
  from p group by grouping sets ((1, 2, 3), (1, 2)) order by 1, 2, 3 nulls first
"""


def test_scorecards_equal_plain_sql_over_the_loads(year: psycopg.Connection) -> None:
    backfill(year, REGISTRY, as_of=AS_OF)
    keys = [(s.id, s.department, date.fromisoformat(f"{m}-01"), late_after(m, s.obligation.grace_working_days))
            for s in SOURCES for m in MONTHS]
    columns = [list(c) for c in zip(*keys, strict=True)]
    expected = {(r[0], r[1], r[2]): r[3:] for r in year.execute(PLAIN, columns).fetchall()}
    got: dict[tuple, tuple] = {}
    for month in MONTHS:
        for card in scorecards(year, month):
            got[(month, card.department, card.source_id)] = (
                card.periods_due, card.periods_delivered, card.periods_on_time, card.rows_received,
                card.rows_accepted, card.feedback_rows, card.rows_corrected)
    assert got == expected
    assert len(got) == len(MONTHS) * (8 + 16)
    # Every kind of month happened: the figures are not trivially 100 %.
    totals = [c for m in MONTHS for c in scorecards(year, m) if c.source_id is None]
    assert any(c.timeliness is not None and c.timeliness < 1 for c in totals)
    assert any(c.correction is not None and 0 < c.correction < 1 for c in totals)


def test_ranking_orders_departments_by_score(year: psycopg.Connection) -> None:
    backfill(year, REGISTRY, as_of=AS_OF)
    ranked = ranking(year, "2026-06")
    scores = [r.card.score for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert ranked[0].rank == 1 and len(ranked) == 8
    text = render_ranking(REGISTRY, ranked, "2026-06")
    assert "2026年6月 数据报送情况通报" in text and "测试局d" in text


def test_one_department_and_an_empty_month(year: psycopg.Connection) -> None:
    backfill(year, REGISTRY, as_of=AS_OF)
    cards = scorecards(year, "2026-03", "d3")
    assert {c.source_id for c in cards} == {None, "s30", "s31"}
    assert scorecards(year, "2025-03") == [] and ranking(year, "2025-03") == []
    assert Scorecard("2025-03", "x", None, 0, 0, 0, 0, 0, 0, 0).score is None
