"""The stewards' dashboard's figures (huiju.monitoring.dashboard) on the demo's monitoring data, read as the
dashboard's role: each source's state, the overdue list with its 催报 step, the 通报 and trend, a department's
batches with the anomaly flagged, a batch's quarantined rows masked."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from huiju_demo.history import ANOMALY_SOURCE, MISSING_SOURCE

from huiju.monitoring import dashboard
from huiju.monitoring.scorecards import ranking
from huiju.registry import load_registry
from huiju.warehouse import role_url
from tests.support.dashboard import DAY_ROWS, DemoMonitoring

REGISTRY = load_registry()
CLEAR_ID = re.compile(r"\d{17}[\dXx]")
CLEAR_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


@pytest.fixture(scope="module")
def conn(demo_monitoring: DemoMonitoring) -> Iterator[psycopg.Connection]:
    with psycopg.connect(role_url("dashboard", demo_monitoring.url)) as connection:
        yield connection


def test_the_overview_shows_the_missed_delivery_escalated_and_every_source(
        conn: psycopg.Connection, demo_monitoring: DemoMonitoring) -> None:
    view = dashboard.overview(conn, REGISTRY, demo_monitoring.as_of)
    assert view.month == demo_monitoring.day.strftime("%Y-%m") and len(view.months) == dashboard.TREND_MONTHS
    overdue = dashboard.overdue(conn, REGISTRY, demo_monitoring.as_of)
    [missed] = [o for o in overdue if o.reminder.period == demo_monitoring.history.missed.isoformat()]
    assert missed.reminder.source_id == MISSING_SOURCE and missed.department_name == "税务局"
    assert (missed.ladder_step, missed.ladder_label) == ("escalate", "督办（已告知分管领导）")
    states = dashboard.source_states(conn, REGISTRY, demo_monitoring.as_of)
    assert {s.source_id for s in states} == set(REGISTRY.sources)
    by_source = {s.source_id: s for s in states}
    assert by_source[ANOMALY_SOURCE].state == "on_time" and by_source[ANOMALY_SOURCE].rows_received >= DAY_ROWS
    # The overview counts in SQL what the detail pages list: the same states, the same overdue periods and steps.
    assert view.state_counts == dashboard.counted(states)
    assert sum(view.state_counts.values()) == len(REGISTRY.sources)
    assert view.overdue_periods == len(overdue) > 0
    for item in view.overdue_departments:
        periods = [o for o in overdue if o.reminder.department == item.department]
        assert (item.periods, item.sources, item.held) == \
            (len(periods), len({o.reminder.source_id for o in periods}), sum(o.reminder.held for o in periods))
        assert item.unnotified == sum(o.ladder_step is None for o in periods)
        assert item.steps == {level: sum(o.ladder_step == level for o in periods) for level in item.steps}
        assert item.working_days_late == max(o.reminder.working_days_late for o in periods)
    assert next(d for d in view.overdue_departments if d.department == "swj").steps["escalate"] >= 1
    assert [r.card.department for r in view.ranked] == [r.card.department for r in ranking(conn, view.month)]
    assert {"swj", "scjgj"} <= set(view.trend)


def test_the_state_is_the_ledgers_latest_period(conn: psycopg.Connection, demo_monitoring: DemoMonitoring) -> None:
    states = {s.source_id: s for s in dashboard.source_states(conn, REGISTRY, demo_monitoring.as_of)}
    latest = dict(conn.execute(
        "select distinct on (source_id) source_id, status from ops.submissions where period_end < %s"
        " order by source_id, period_end desc", (demo_monitoring.as_of,)).fetchall())
    assert {sid: s.state for sid, s in states.items() if sid in latest} == latest
    assert all(s.state == "unmonitored" for sid, s in states.items() if sid not in latest)


def test_a_department_lists_its_batches_with_the_anomaly_flagged(
        conn: psycopg.Connection, demo_monitoring: DemoMonitoring) -> None:
    detail = dashboard.department_detail(conn, REGISTRY, "scjgj", demo_monitoring.day.strftime("%Y-%m"))
    assert detail is not None and detail.name == "市场监督管理局"
    assert detail.cards[0].source_id is None  # the department's total first
    day_load = demo_monitoring.day_loads[ANOMALY_SOURCE]
    assert detail.batches[0].load_id == day_load and detail.batches[0].anomalous
    assert not any(b.anomalous for b in detail.batches[1:])
    assert dashboard.department_detail(conn, REGISTRY, "nope", "2026-01") is None


def test_a_departments_batches_come_a_page_at_a_time_newest_first(
        conn: psycopg.Connection, demo_monitoring: DemoMonitoring) -> None:
    month = demo_monitoring.day.strftime("%Y-%m")
    every = conn.execute("select load_id from ops.loads where department = 'scjgj'"
                         " order by received_at desc, load_id").fetchall()
    assert len(every) > 3
    pages = [dashboard.department_detail(conn, REGISTRY, "scjgj", month, page, per_page=2)
             for page in range(1, len(every) // 2 + 2)]
    assert all(p is not None and p.batch_count == len(every) and p.pages == -(-len(every) // 2) for p in pages)
    assert [b.load_id for p in pages[:pages[0].pages] for b in p.batches] == [load_id for (load_id,) in every]
    # A page past the last shows the last; a page before the first, the first.
    past = dashboard.department_detail(conn, REGISTRY, "scjgj", month, 10_000, per_page=2)
    before = dashboard.department_detail(conn, REGISTRY, "scjgj", month, 0, per_page=2)
    assert past.page == past.pages and past.batches == pages[past.pages - 1].batches
    assert before.page == 1 and before.batches == pages[0].batches


def test_a_batch_shows_its_quarantined_rows_masked(conn: psycopg.Connection, demo_monitoring: DemoMonitoring) -> None:
    load_id = demo_monitoring.day_loads[ANOMALY_SOURCE]
    detail = dashboard.batch_detail(conn, REGISTRY, "scjgj", load_id)
    assert detail is not None
    expected = conn.execute("select count(*) from quarantine.rows where load_id = %s", (load_id,)).fetchone()[0]
    assert detail.total_rows == expected == detail.batch.rows_quarantined > 0
    assert [r.row_no for r in detail.rows] == sorted(r.row_no for r in detail.rows)
    shown = " ".join(v["value"] + v["reason"] + r.reasons for r in detail.rows for v in r.violations)
    assert not CLEAR_ID.search(shown) and not CLEAR_MOBILE.search(shown)
    assert dashboard.batch_detail(conn, REGISTRY, "swj", load_id) is None  # another department's batch


def test_months_back() -> None:
    assert dashboard.months_back("2026-02", 3) == ["2025-12", "2026-01", "2026-02"]


def test_a_batch_validated_in_full_shows_great_expectations_results(
        conn: psycopg.Connection, demo_monitoring: DemoMonitoring) -> None:
    load_id = demo_monitoring.day_loads[ANOMALY_SOURCE]
    detail = dashboard.batch_detail(conn, REGISTRY, "scjgj", load_id)
    stored = conn.execute("select rule, field, success, unexpected_count from ops.validation_results"
                          " where load_id = %s", (load_id,)).fetchall()
    assert detail is not None and len(detail.checks) == len(stored) > 0
    failed = [c for c in detail.checks if not c.success]
    assert failed and detail.checks[:len(failed)] == failed  # failures first
    assert {(c.rule, c.unexpected_count) for c in failed} == {(r, n) for r, _, ok, n in stored if not ok}
    assert all(c.rule_label and c.header for c in detail.checks)
