"""The monitoring run (huiju.monitoring.monitor) and ``huiju monitor``: the ledger rebuilt, the ladder queued, the
overdue list, scorecard and calendar warnings printed; the day's first run rebuilds everything, later ones the
recent periods."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from huiju.cli import main
from huiju.monitoring.ledger import last_full_rebuild
from huiju.monitoring.monitor import overdue_list, publication_timeliness, render_monitor, run_monitor
from huiju.settings import get_settings
from tests.support.deliveries import add_load, at, registry, source

MONTHLY = source("m_report", "d01", cadence="monthly", since=date(2026, 9, 1))
REGISTRY = registry([MONTHLY])


def test_a_run_and_what_it_prints(pg: psycopg.Connection) -> None:
    add_load(pg, MONTHLY, at(date(2026, 10, 9)))                                   # September on time
    add_load(pg, MONTHLY, at(date(2026, 11, 4)), rows=20, quarantined=15, status="held")  # October held
    report = run_monitor(pg, REGISTRY, date(2026, 12, 4))
    assert report.calendar_gaps == (2027,) and "2027" in report.warnings[0]
    assert last_full_rebuild(pg) == date(2026, 12, 4)
    # October (due 6 Nov) is held: overdue, escalated; November is due on Monday: a reminder; the week's digest.
    assert sorted(report.reminders.queued) == [
        "monitor:digest:*:*:2026-W49", "monitor:escalate:d01:m_report:2026-10", "monitor:overdue:d01:m_report:2026-10",
        "monitor:remind:d01:m_report:2026-11"]
    [october] = overdue_list(pg, date(2026, 12, 4))
    assert (october.period, october.held, october.rows_held, october.working_days_late) == ("2026-10", True, 20, 20)
    text = render_monitor(pg, REGISTRY, report, "2026-10")
    assert "逾期未报 (overdue): 1" in text and "2026年10月：暂缓入库，截止2026-11-06" in text
    assert "2026年10月 数据报送情况通报" in text and "WARNING (calendar)" in text
    again = run_monitor(pg, REGISTRY, date(2026, 12, 4))  # later the same day: recent periods only, nothing new
    assert again.reminders.queued == [] and again.periods <= report.periods


def test_the_command(pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HUIJU_WAREHOUSE_URL", pg_url)
    get_settings.cache_clear()
    try:
        assert main(["monitor", "--as-of", "2026-12-07", "--month", "2026-11"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "Monitoring as of 2026-12-07" in out and "2026年11月 数据报送情况通报" in out
    assert "config/calendar/2027.yaml" in out


def test_the_monitor_counts_late_publications_per_department(pg: psycopg.Connection) -> None:
    assert publication_timeliness(pg, "2026-02") == []                   # before dbt first built the view
    # The rows as dbt's view credit.credit_publication_timeliness gives them (its own test: the dbt unit test).
    pg.execute("create schema if not exists credit")
    pg.execute("create table credit.credit_publication_timeliness"
               " (source_department text, received_date date, is_on_time boolean)")
    pg.execute("insert into credit.credit_publication_timeliness values ('d01', '2026-02-24', true),"
               " ('d01', '2026-02-25', false), ('d01', '2026-02-26', false), ('d02', '2026-02-25', null),"
               " ('d02', '2026-03-02', false)")
    assert [(t.department, t.received, t.late, t.unknown) for t in publication_timeliness(pg, "2026-02")] == [
        ("d01", 3, 2, 0), ("d02", 1, 0, 1)]
    report = run_monitor(pg, REGISTRY, date(2026, 3, 3))
    text = render_monitor(pg, REGISTRY, report, "2026-02")
    assert "双公示超期 (decisions received more than 7 working days after the decision), 2026-02: 2" in text
    assert "测试局d01：收到3条，超期2条" in text
    assert "d02：收到1条，超期0条，1条因工作日历缺年份或无决定日期无法判定" in text
