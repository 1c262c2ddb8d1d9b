"""Anomaly alerts (预测预警) in the warehouse: real batches validated against generated histories of their source.

The history is eight weeks of a daily source in the ledger: about 40 rows a weekday and 4 on
weekends. A batch landed and validated then is judged against it: a normal Monday passes, a
Monday of 4 rows alerts the stewards (once), with ``action: hold`` it is held until a steward
releases it, and a Sunday of 4 rows is no alarm (compared with Sundays only).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from huiju_demo.bulk import write_penalty_csv

from huiju.landing import land_file
from huiju.monitoring.anomalies import recent_anomalies, release_hold, render_anomalies
from huiju.registry import AnomalySettings, Registry, load_registry
from huiju.settings import get_settings
from huiju.validation import ValidationResult, publish_load, validate_load

SOURCE = "cgj_penalty"  # daily
MONDAY, SUNDAY = date(2026, 11, 30), date(2026, 11, 29)


@pytest.fixture
def url(make_database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A warehouse of the test's own with the source's generated history."""
    monkeypatch.setenv("HUIJU_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("HUIJU_STEWARD_EMAILS", "steward@example.gov.cn")
    get_settings.cache_clear()
    database = make_database("anom", migrated=True)
    rng = random.Random(16)
    with psycopg.connect(database) as conn:
        for back in range(1, 57):
            day = MONDAY - timedelta(days=back)
            rows = rng.randint(36, 44) if day.isoweekday() <= 5 else rng.randint(3, 5)
            conn.execute(
                "insert into ops.loads (load_id, source_id, department, dataset, channel, reference, sha256, bytes,"
                " status, rows_received, rows_accepted, rows_quarantined, data_date)"
                " values (%s, %s, 'cgj', 'admin_penalty', 'ftp', %s, %s, 100, 'published', %s, %s, 0, %s)",
                (f"hist-{back}", SOURCE, f"cgj_penalty_{day:%Y%m%d}.csv", f"sha-{back}", rows, rows, day))
    yield database
    get_settings.cache_clear()


def registry_with(**anomaly: object) -> Registry:
    real = load_registry()
    source = real.sources[SOURCE]
    changed = source.model_copy(update={"anomaly": AnomalySettings(**anomaly)})
    return real.model_copy(update={"sources": {**real.sources, SOURCE: changed}})


def deliver(url: str, registry: Registry, tmp_path: Path, day: date, rows: int, tag: str) -> ValidationResult:
    source = registry.source(SOURCE)
    path = write_penalty_csv(tmp_path / f"cgj_penalty_{day:%Y%m%d}_{tag}.csv", source, rows, tag=tag)
    with psycopg.connect(url) as conn:
        load_id = land_file(conn, registry, source, path, data_date=day).load_id
        return validate_load(conn, registry, load_id, run_gx=False)


def notices(url: str, load_id: str) -> list[tuple[str, str, list[str]]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select n.kind, n.subject, array_agg(d.recipient order by d.recipient) from ops.notices n"
            " join ops.notice_deliveries d using (notice_id) where n.load_id = %s group by 1, 2", (load_id,)).fetchall()


def test_a_normal_batch_passes_silently(url: str, tmp_path: Path) -> None:
    result = deliver(url, registry_with(), tmp_path, MONDAY, 41, "OK")
    assert result.status == "validated" and notices(url, result.load_id) == []


def test_a_batch_far_off_its_history_alerts_the_stewards_once_and_still_goes_on(url: str, tmp_path: Path) -> None:
    registry = registry_with()
    result = deliver(url, registry, tmp_path, MONDAY, 4, "FEW")
    assert result.status == "validated"
    ((kind, subject, recipients),) = notices(url, result.load_id)
    assert (kind, recipients) == ("anomaly", ["steward@example.gov.cn"])
    assert subject.startswith("【数据异常预警】城市管理局《") and "行数4（历史中位数" in subject
    with psycopg.connect(url) as conn:
        (metric, history, weekday, action), = conn.execute(
            "select metric, history, weekday, action from ops.load_anomalies where load_id = %s",
            (result.load_id,)).fetchall()
        body = conn.execute("select body from ops.notices where load_id = %s", (result.load_id,)).fetchone()[0]
        assert validate_load(conn, registry, result.load_id, run_gx=False).status == "validated"  # judged once
        assert publish_load(conn, result.load_id)
    assert (metric, history, weekday, action) == ("rows", 8, 1, "alert")  # the eight Mondays before
    assert "同为星期一" in body and "本批次将照常发布" in body
    with psycopg.connect(url) as conn:
        (row,) = recent_anomalies(conn, datetime.now(UTC) - timedelta(hours=1))
    assert (row.load_id, row.metric, row.value, row.status) == (result.load_id, "rows", 4, "published")
    assert render_anomalies([row]).endswith("rows 4 vs median 40 of 8 batches → stewards alerted (published)")


def test_in_hold_mode_the_batch_waits_for_a_steward(url: str, tmp_path: Path) -> None:
    result = deliver(url, registry_with(action="hold"), tmp_path, MONDAY, 4, "HOLD")
    assert result.status == "held"
    ((kind, _, _),) = notices(url, result.load_id)  # the anomaly notice, not the over-tolerance one
    assert kind == "anomaly"
    with psycopg.connect(url) as conn:
        error, body = conn.execute("select l.error, n.body from ops.loads l join ops.notices n using (load_id)"
                                   " where l.load_id = %s", (result.load_id,)).fetchone()
        assert "anomaly against 8 earlier batches" in error and "暂缓发布" in body
        conn.commit()
        assert not publish_load(conn, result.load_id)
        assert release_hold(conn, result.load_id, "steward-a")
        assert not release_hold(conn, result.load_id, "steward-a")  # once
        assert publish_load(conn, result.load_id)
        assert conn.execute("select released_by from ops.load_anomalies where load_id = %s",
                            (result.load_id,)).fetchone() == ("steward-a",)


def test_a_quiet_sunday_is_no_alarm_unless_every_day_is_compared(url: str, tmp_path: Path) -> None:
    sunday = deliver(url, registry_with(), tmp_path, SUNDAY, 4, "SUN")
    assert sunday.status == "validated" and notices(url, sunday.load_id) == []
    every_day = deliver(url, registry_with(weekday=False), tmp_path, SUNDAY, 3, "SUN2")
    assert [kind for kind, _, _ in notices(url, every_day.load_id)] == ["anomaly"]


def test_a_tolerance_hold_is_not_released_as_an_anomaly(url: str, tmp_path: Path) -> None:
    registry = registry_with(action="hold")
    source = registry.source(SOURCE)
    h = source.header_for_field
    path = write_penalty_csv(tmp_path / "cgj_penalty_bad.csv", source, 40, tag="BAD",
                             overrides={i: {h["party_name"]: ""} for i in range(20)})
    with psycopg.connect(url) as conn:
        load_id = land_file(conn, registry, source, path, data_date=MONDAY).load_id
        assert validate_load(conn, registry, load_id, run_gx=False).status == "held"
        conn.commit()
        assert not release_hold(conn, load_id, "steward-a")
    assert [kind for kind, _, _ in notices(url, load_id)] == ["held"]
