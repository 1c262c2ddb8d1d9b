"""The demo's platforms (one per target, auth and signature as configured) reached through their Connections;
the provincial one serves the day's backflow (省回流) to the REST channel."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psycopg
from huiju_demo.backflow import CITY_SHARE
from huiju_demo.credit_platform import occasional_rejection, running_platforms

from huiju.channels import CollectContext
from huiju.channels import rest as rest_channel
from huiju.push.run import connection_from_environment, platform_for
from huiju.push.targets import load_targets
from huiju.registry import ORIGIN_BACKFLOW
from huiju.warehouse import role_url
from tests.integration.push.conftest import make_target
from tests.integration.push.test_faults import assert_exactly_once, settle


def test_each_target_reaches_its_platform_through_its_connection(pg_url, credit, waits, registry,
                                                                 monkeypatch) -> None:
    targets = {"city_credit": make_target(credit, "city_credit"),
               "province_share": make_target(credit, "province_share", signature="sm3", forward_backflow=False)}
    credit.add(60)
    credit.add(3, origin="省回流", prefix="S")
    with running_platforms(targets) as running, psycopg.connect(pg_url) as conn:
        for name, value in running.airflow_env().items():
            monkeypatch.setenv(name, value)
        for name, target in targets.items():
            _conn_id, platform = running.platforms[name]
            assert platform.algorithm == target.signature
            client = platform_for(target, connection_from_environment(target.connection), sleep=waits)
            assert client.base_url == platform.url
            settle(conn, registry, target, platform, waits)
            assert_exactly_once(conn, credit, target, platform, takes_backflow=target.forward_backflow)
    assert occasional_rejection({"action": "withdraw", "record_id": "x"}) is None


def test_the_provincial_platform_serves_the_days_backflow_to_the_rest_channel(
        make_database, registry, scratch_var: Path, monkeypatch) -> None:
    url = make_database("backflow_rest", migrated=True)
    sources = [registry.source("province_penalty_backflow"), registry.source("province_license_backflow")]
    rows = 40
    with running_platforms(load_targets(registry).targets, registry, date(2026, 11, 20), rows) as running:
        served = {s.submission.source_id: s for s in running.backflow}
        assert set(served) == {s.id for s in sources}  # 行政处罚 and 行政许可, each at its own path
        province = running.platforms["province_share"][1]
        assert {path: g.algorithm for path, g in province.backflow.items()} == {  # signed as the platform signs
            "/api/v1/backflow/records": "sm3", "/api/v1/backflow/licenses": "sm3"}
        for simulated in served.values():  # its own, and city decisions handed back
            assert simulated.submission.rows_written == rows + rows // CITY_SHARE
        for name, value in running.airflow_env().items():
            monkeypatch.setenv(name, value)
        with psycopg.connect(role_url("landing", url)) as conn:
            for source in sources:
                rest_channel.collect(CollectContext(registry=registry, source=source, conn=conn,
                                                    connection=connection_from_environment(source.connection or "")))
    with psycopg.connect(url) as conn:
        for source in sources:
            landed = conn.execute("select origin, sum(rows_received) from ops.loads where source_id = %s group by 1",
                                  (source.id,)).fetchall()
            assert landed == [(ORIGIN_BACKFLOW, served[source.id].submission.rows_written)]
        # Every other record came with its 类别 items as national codes: landed as names, none quarantined for it.
        assert conn.execute("select count(*) from raw.admin_license r join ops.loads l on l.load_id = r._load_id"
                            " where l.source_id = 'province_license_backflow'"
                            " and (r.party_type ~ '^[0-9]+$' or r.license_category ~ '^[0-9]+$')").fetchone() == (0,)
        assert conn.execute("select count(*) from quarantine.rows where violations @> '[{\"rule\": \"code\"}]'"
                            ).fetchone() == (0,)
