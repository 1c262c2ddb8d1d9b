"""huiju.transform around dbt: the pseudonym key's HMAC pads, the lazily parsed manifest, the docs route."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
from pathlib import Path

import pytest
from huiju_demo.bulk import valid_id_number

from huiju import transform
from huiju.settings import get_settings


@pytest.mark.parametrize("key", ["k", "示范 key with spaces", "x" * 100])
def test_the_pads_give_the_standard_hmac(key: str) -> None:
    inner, outer = transform.hmac_pads(key)
    message = valid_id_number(0).encode()  # generated with a valid check digit, not a real person's
    ours = hashlib.sha256(bytes.fromhex(outer) + hashlib.sha256(bytes.fromhex(inner) + message).digest()).hexdigest()
    assert ours == hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def test_the_key_goes_to_dbt_as_session_settings_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIJU_PSEUDONYM_KEY", "a-secret")
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=64MB")
    env = transform.dbt_env("postgresql://u:p@db.example/huiju")
    assert env["PGOPTIONS"].startswith("-c work_mem=64MB -c huiju.pseudonym_ipad=")
    assert "a-secret" not in "".join(env.values())
    monkeypatch.setenv("PGOPTIONS", env["PGOPTIONS"])  # a second call does not stack the settings
    assert transform.dbt_env("postgresql://u:p@db.example/huiju")["PGOPTIONS"] == env["PGOPTIONS"]


@pytest.mark.integration
def test_the_manifest_is_parsed_once_and_again_only_after_a_change(scratch_var: Path) -> None:
    path = transform.ensure_manifest()
    assert path == scratch_var / "dbt" / "manifest" / "manifest.json" and path.exists()
    first = path.stat().st_mtime_ns
    assert transform.manifest_is_current()
    transform.ensure_manifest()
    assert path.stat().st_mtime_ns == first  # nothing changed: no dbt parse
    project_file = get_settings().dbt_project_dir / "dbt_project.yml"
    os.utime(path, ns=(first, project_file.stat().st_mtime_ns - 10**9))  # the project is now newer
    assert not transform.manifest_is_current()
    transform.ensure_manifest()
    assert transform.manifest_is_current()


@pytest.mark.integration
def test_the_scheduled_build_writes_its_run_results_and_no_manifest(make_database, tmp_path: Path) -> None:
    url = make_database("dbt_scheduled", migrated=True)
    target = tmp_path / "target"
    transform.run_dbt([*transform.SCHEDULED_BUILD, "--select", "code_party_type"], url, target_path=target)
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    assert "seed.huiju.code_party_type" in {result["unique_id"] for result in results}
    assert {result["status"] for result in results} <= {"success", "pass"}
    assert not (target / "manifest.json").exists()  # the DAG reads ensure_manifest()'s


@pytest.mark.integration
def test_the_scheduled_build_keeps_each_threads_connection_from_node_to_node(make_database, tmp_path: Path) -> None:
    import time

    import psycopg

    url = make_database("dbt_sessions", migrated=True)

    def sessions() -> int:
        with psycopg.connect(url) as conn:
            deadline = time.monotonic() + 10
            while conn.execute("select count(*) from pg_stat_activity where datname = current_database()"
                               " and pid <> pg_backend_pid()").fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.1)  # dbt's connections, closed at its end, may take a moment to go
            return conn.execute("select sessions from pg_stat_database where datname = current_database()"
                                ).fetchone()[0]

    before = sessions()
    transform.scheduled_build(url, "--select", "resource_type:seed", target_path=tmp_path)
    nodes = json.loads((tmp_path / "run_results.json").read_text(encoding="utf-8"))["results"]
    assert len(nodes) >= 10  # the seeds and their tests
    assert sessions() - before - 1 <= 4  # dbt's: two threads', the main thread's, one listing schemas
    # Opt-in: any other dbt command opens a connection per node, as dbt does.
    before = sessions()
    transform.run_dbt([*transform.SCHEDULED_BUILD, "--select", "resource_type:seed"], url, target_path=tmp_path)
    assert sessions() - before - 1 >= len(nodes)


def test_the_docs_are_served_by_the_plugin(scratch_var: Path) -> None:
    from huiju_airflow.auth import airflow_user
    from huiju_airflow.plugin import DBT_DOCS_PREFIX, HuijuPlugin, dbt_docs_app
    from starlette.testclient import TestClient

    docs = scratch_var / "dbt" / "docs"
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("<html>dbt docs</html>", encoding="utf-8")
    app = dbt_docs_app()
    assert TestClient(app).get("/").status_code == 401  # behind Airflow's login (tests/unit/plugins/test_auth.py)
    app.dependency_overrides[airflow_user] = lambda: object()  # a logged-in user, as the auth tests show
    client = TestClient(app)
    assert client.get("/").text == "<html>dbt docs</html>"
    assert client.get("/manifest.json").status_code == 404
    view = HuijuPlugin.external_views[0]
    assert view["href"] == DBT_DOCS_PREFIX.lstrip("/") + "/"
    assert HuijuPlugin.fastapi_apps[0]["url_prefix"] == DBT_DOCS_PREFIX


def _full_width(text: str) -> str:
    """ASCII digits and letters as their full-width forms (as typed with a Chinese input method)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


@pytest.mark.integration
def test_a_daily_build_reads_values_as_validation_does_and_tests_what_the_day_brought(
        make_database, tmp_path: Path) -> None:
    import psycopg
    from huiju_demo.bulk import write_penalty_csv

    from huiju.registry import load_registry
    from tests.dbt.helpers import land_and_publish

    url = make_database("dbt_day", migrated=True)
    registry = load_registry()
    market = registry.source("scjgj_penalty")
    header = market.header_for_field
    target = tmp_path / "target"
    land_and_publish(url, market.id, write_penalty_csv(tmp_path / "day1.csv", market, 20, tag="S1"), registry)
    transform.run_dbt(["build"], url, target_path=target)
    with psycopg.connect(url) as conn:
        uscc = conn.execute("select uscc from staging.stg_landing__admin_penalties where decision_no = %s",
                            ("测罚〔2026〕S10号",)).fetchone()[0]

    # Day 2 (the helper marks it validated without the suites): a USCC and a fine typed full-width
    # with an ideographic space, and a 行政相对人类别 outside the code list.
    day2 = write_penalty_csv(tmp_path / "day2.csv", market, 2, tag="S2", overrides={
        0: {header["uscc"]: _full_width(uscc) + "\u3000", header["fine_amount_wan"]: "２.５"},
        1: {header["party_type"]: "未知类别"},
    })
    land_and_publish(url, market.id, day2, registry)
    with pytest.raises(transform.TransformError, match="accepted_values_credit_admin_penalty_party_type"):
        transform.run_dbt(["build"], url, target_path=target)
    with psycopg.connect(url) as conn:
        staged = conn.execute("select uscc, fine_amount_wan from staging.stg_landing__admin_penalties"
                              " where decision_no = %s", ("测罚〔2026〕S20号",)).fetchone()
    assert staged[0] == uscc and float(staged[1]) == 2.5
    # the day's tests were scoped to what the build changed (the full refresh tests everything)
    scoped = next((target / "run").rglob("accepted_values_credit_admin_penalty_party_type*.sql")).read_text()
    assert "where decision_no = any(array(select decision_no from" in scoped


def test_a_workbooks_date_serials_are_staged_with_its_own_date_system(make_database, tmp_path: Path) -> None:
    """Validation reads an Excel date serial with the workbook's epoch; staging reads it the same way."""
    import openpyxl
    import psycopg
    from huiju_demo.bulk import penalty_row

    from huiju.landing import land_file
    from huiju.registry import load_registry
    from huiju.validation import publish_load, validate_load

    url = make_database("dbt_serial", migrated=True)
    registry = load_registry()
    source = registry.source("sthjj_penalty")  # an Excel template with a title row
    header = source.header_for_field
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["环境行政处罚信息"])
    sheet.append(list(source.columns))
    row = penalty_row(source, 7, tag="XS")
    row[header["decision_date"]] = 46086  # 2026-03-05 typed into a cell formatted as a number
    row[header["publish_until"]] = "2029-03-05"
    sheet.append([row[h] for h in source.columns])
    path = tmp_path / "sthjj_serials.xlsx"
    workbook.save(path)
    with psycopg.connect(url) as conn:
        landed = land_file(conn, registry, source, path)
        assert validate_load(conn, registry, landed.load_id, run_gx=False).status == "validated"
        conn.commit()
        assert publish_load(conn, landed.load_id)
        conn.commit()
    transform.run_dbt(["run", "--select", "stg_landing__admin_penalties"], url, target_path=tmp_path / "target")
    with psycopg.connect(url) as conn:
        staged = conn.execute("select decision_date, publish_until from staging.stg_landing__admin_penalties"
                              " where load_id = %s", (landed.load_id,)).fetchall()
    assert staged == [(datetime.date(2026, 3, 5), datetime.date(2029, 3, 5))]
