"""``huiju push run | replay | report`` against a simulated platform, as the push component's own role."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
import yaml

from huiju.cli import main
from huiju.settings import get_settings
from tests.integration.push.conftest import make_target

ROOT = Path(__file__).resolve().parents[3]


def test_run_report_and_replay_from_the_command_line(pg_url, credit, platform, monkeypatch, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    shutil.rmtree(config / "push_targets")
    (config / "push_targets").mkdir()
    target = make_target(credit, "city_credit", batch_size=5)
    (config / "push_targets" / "city_credit.yaml").write_text(
        yaml.safe_dump(json.loads(target.model_dump_json()), allow_unicode=True), encoding="utf-8")
    with psycopg.connect(pg_url) as conn:  # the push role reads the credit layer; here, the test's stand-in
        conn.execute(f"grant usage on schema {credit.schema} to huiju_push")
        conn.execute(f"grant select on all tables in schema {credit.schema} to huiju_push")
    monkeypatch.setenv("HUIJU_CONFIG", str(config))
    monkeypatch.setenv("HUIJU_WAREHOUSE_URL", pg_url)
    monkeypatch.setenv("HUIJU_VAR", str(tmp_path / "var"))
    monkeypatch.setenv(f"AIRFLOW_CONN_{target.connection.upper()}", json.dumps(platform.connection()))
    get_settings.cache_clear()
    credit.add(12)
    platform.faults = ["400"]  # the first batch refused: final for it, until a replay
    try:
        assert main(["push", "run"]) == 0
        assert "city_credit: 12 new or changed" in capsys.readouterr().out
        assert len(platform.records) == 7
        assert main(["push", "report", "--target", "city_credit"]) == 0
        report = capsys.readouterr().out
        assert "accepted" in report and "city_credit" in report
        # The backflow per day follows, read as the push role (nothing came back here: its columns only).
        assert "The province's backflow (省回流) per day it arrived:" in report and "records 省回流" in report
        today = "2026-01-01"
        assert main(["push", "replay", "--target", "city_credit", "--from", today, "--to", "2099-12-31"]) == 0
        assert "5 records queued again" in capsys.readouterr().out
        assert set(platform.records) == credit.publishable()
        assert platform.duplicates() == []
    finally:
        get_settings.cache_clear()


def test_the_day_a_push_judges_deadlines_on_is_asia_shanghai_s(pg_url, monkeypatch) -> None:
    """17:00 UTC on 7 December is 01:00 on the 8th in Beijing: a 7 December deadline has passed there."""
    from datetime import UTC, date, datetime, tzinfo

    from huiju.monitoring import ledger
    from huiju.push.run import reconciliation

    class Clock(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:
            return datetime(2026, 12, 7, 17, 0, tzinfo=UTC).astimezone(tz)

    monkeypatch.setattr(ledger, "datetime", Clock)
    with psycopg.connect(pg_url) as conn:
        conn.execute("insert into ops.push_outbox (target, record_key, relation, action, content_hash, decision_date,"
                     " deadline_date, queued_at) values ('tz_probe', 'CF:TZ', 'r', 'upsert', 'h', '2026-11-26',"
                     " '2026-12-07', '2026-12-07 09:00+08')")
        try:
            [row] = reconciliation(conn, target="tz_probe")
            assert (row["day"], row["due"], row["late"]) == (date(2026, 12, 7), 1, 1)
        finally:
            conn.rollback()
