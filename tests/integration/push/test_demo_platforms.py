"""The demo's platforms (one per target, auth and signature as configured) reached through their Connections."""

from __future__ import annotations

import psycopg
from huiju_demo.credit_platform import occasional_rejection, running_platforms

from huiju.push.run import connection_from_environment, platform_for
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
