"""Replay (重放) against a real PostgreSQL: the same rows, row numbers and verdicts as the first delivery."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from huiju_demo.bulk import penalty_row, valid_id_number, write_penalty_csv

from huiju.cli import main
from huiju.landing import land_file, land_records
from huiju.registry import Registry, load_registry
from huiju.replay import ReplayError, replay, select_manifests
from huiju.validation import publish_load, validate_load
from tests.support.warehouse_state import differences, empty_warehouse, landed_state

ARRIVED = datetime(2026, 11, 20, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture
def platform(replay_platform: str) -> str:
    """A warehouse and an archive of the test's own: a restore must find nothing but the archive."""
    return replay_platform


def _deliver(url: str, registry: Registry, tmp_path: Path) -> list[str]:
    """First deliveries: a clean file, a file with bad rows (quarantined) and a hand entry; validated, published."""
    source = registry.source("scjgj_penalty")
    wrong_check = valid_id_number(1)[:-1] + ("0" if valid_id_number(1)[-1] != "0" else "1")
    bad = {3: {"当事人名称": "", "法定代表人身份证号": wrong_check}, 7: {"罚款金额(万元)": "五万"}}
    files = [write_penalty_csv(tmp_path / "处罚_20261120.csv", source, 30, tag="RA"),
             write_penalty_csv(tmp_path / "处罚_20261121.csv", source, 25, tag="RB", overrides=bad)]
    load_ids = []
    with psycopg.connect(url) as conn:
        for day, path in enumerate(files):
            result = land_file(conn, registry, source, path, data_date=date(2026, 11, 20 + day),
                               received_at=ARRIVED.replace(day=20 + day))
            load_ids.append(result.load_id)
        entry = registry.source("mzj_penalty")
        as_sent = [penalty_row(entry, 1, "RE"), penalty_row(entry, 2, "RE")]
        payload = json.dumps({"submission_id": "s-1", "records": as_sent}, ensure_ascii=False).encode("utf-8")
        load_ids.append(land_records(conn, registry, entry, reference="人工录入_20261121_101500",
                                     content_id="s-1-content", records=as_sent, payload=payload,
                                     data_date=date(2026, 11, 21)).load_id)
        for load_id in load_ids:
            if validate_load(conn, registry, load_id).status == "validated":
                publish_load(conn, load_id)
        conn.commit()
    return load_ids


def test_replay_into_the_warehouse_holding_the_loads_changes_nothing_and_restores_an_empty_one(
        platform: str, registry: Registry, tmp_path: Path) -> None:
    load_ids = _deliver(platform, registry, tmp_path)
    with psycopg.connect(platform) as conn:
        original = landed_state(conn, ["admin_penalty"])
    assert len(original["quarantine.rows"]) == 2 and len(original["ops.loads"]) == 3
    assert {row[9] for row in original["ops.loads"]} == {"published"}

    again = replay(select_manifests(since=date(2026, 11, 1)), registry)
    assert sorted(r.load_id for r in again) == sorted(load_ids)
    assert {r.outcome for r in again} == {"already_landed"}
    with psycopg.connect(platform) as conn:
        assert differences(original, landed_state(conn, ["admin_penalty"])) == []

    with psycopg.connect(platform) as conn:
        empty_warehouse(conn, ["admin_penalty"])
    restored = replay(select_manifests(since=date(2026, 11, 1)), registry)
    assert [r.outcome for r in restored] == ["landed"] * 3
    assert {r.status for r in restored} == {"published"}
    with psycopg.connect(platform) as conn:
        assert differences(original, landed_state(conn, ["admin_penalty"])) == []


def test_replay_selects_a_load_or_a_source_and_days(platform: str, registry: Registry, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    first, second, entry = _deliver(platform, registry, tmp_path)
    assert [m["load_id"] for m in select_manifests(load_id=second)] == [second]
    assert [m["load_id"] for m in select_manifests(source_id="scjgj_penalty", since=date(2026, 11, 20),
                                                   until=date(2026, 11, 20))] == [first]
    assert [m["load_id"] for m in select_manifests(since=date(2026, 11, 21))] == [second, entry] or \
        [m["load_id"] for m in select_manifests(since=date(2026, 11, 21))] == [entry, second]
    with pytest.raises(ReplayError, match="no replay manifest"):
        select_manifests(load_id="scjgj_penalty-0123456789abcdef")
    with pytest.raises(ReplayError, match="no such source"):
        select_manifests(source_id="no_such_source", since=date(2026, 11, 1))
    with pytest.raises(ReplayError, match="not a load id"):
        select_manifests(load_id="nonsense")

    with psycopg.connect(platform) as conn:
        empty_warehouse(conn, ["admin_penalty"])
    assert main(["replay", "--load", first]) == 0
    assert f"landed: {first}" in capsys.readouterr().out
    assert main(["replay", "--source", "scjgj_penalty", "--since", "2026-11-21", "--until", "2026-11-21"]) == 0
    assert f"landed: {second}" in capsys.readouterr().out
    assert main(["replay", "--since", "2026-11-01"]) == 0
    out = capsys.readouterr().out
    assert f"already_landed: {first}" in out and f"landed: {entry}" in out
    assert main(["replay", "--source", "scjgj_penalty"]) == 1  # a source needs a range: --since at least
    assert "from which day" in capsys.readouterr().err


def test_the_dag_task_replays_what_its_params_select(platform: str, registry: Registry, tmp_path: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
    from huiju_airflow.tasks import announce_replayed, replay_archived

    first, _, _ = _deliver(platform, registry, tmp_path)
    held = replay_archived(params={"load_id": first, "source_id": None, "since": None, "until": None})
    assert held == {"outcomes": {"already_landed": 1}, "landed": []}
    with pytest.raises(AirflowSkipException):  # nothing new for the warehouse build
        announce_replayed(held)
    with psycopg.connect(platform) as conn:
        empty_warehouse(conn, ["admin_penalty"])
    restored = replay_archived(params={"load_id": None, "source_id": "scjgj_penalty", "since": "2026-11-20",
                                       "until": None})
    assert restored["outcomes"] == {"landed": 2} and announce_replayed(restored) == restored["landed"]
    with pytest.raises(AirflowFailException, match="say what to replay"):  # retrying cannot help
        replay_archived(params={"load_id": None, "source_id": None, "since": None, "until": None})
