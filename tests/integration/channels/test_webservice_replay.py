"""Replay (重放) of REST and SOAP pages: the pages a run landed, replayed from their packs and their group's
manifest, give the same rows, row numbers, verdicts and ledger as the first delivery — into the warehouse that
holds them (nothing changes) and into an emptied one (restored from the archive alone). The departments'
loopback servers (the demo's 交通运输局 REST gateway, 公安局 SOAP service) are stopped before the replay: nothing
is fetched again."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest
from huiju_demo.simulators import rest as rest_simulator
from huiju_demo.simulators import soap as soap_simulator

from huiju.pipeline import collect, publish_validated, validate_pending
from huiju.replay import replay, select_manifests
from tests.support.warehouse_state import differences, empty_warehouse, landed_state
from tests.support.webservice import DAY, connection_info, served_variant

pytestmark = [pytest.mark.timeout(300)]


@pytest.fixture
def platform(webservice_replay_platform: str) -> str:
    """The test's own warehouse, archive and web-service config (tests/integration/conftest.py)."""
    return webservice_replay_platform


def _served(base: str, source, served):
    if base == "jtj_penalty":
        return rest_simulator.gateway_for(source, served, secret="test-app-secret"), rest_simulator.connection_for
    return soap_simulator.service_for(source, served, username="huiju", password="pa55-word"), \
        soap_simulator.connection_for


@pytest.mark.parametrize("base", ["jtj_penalty", "gaj_penalty"], ids=["rest", "soap"])
def test_pages_replay_like_any_other_load(platform: str, base: str) -> None:
    registry, source, served, _ = served_variant(base, 23, page_size=10)
    server, connection_for = _served(base, source, served)
    with server.running():
        results = collect(source.id, DAY, registry, connection_info(source.connection, connection_for(server)))
    assert len(results) == 3 and {r.outcome for r in results} == {"landed"}
    validate_pending(source.id, registry)
    publish_validated(source.id)
    with psycopg.connect(platform) as conn:
        original = landed_state(conn, ["admin_penalty"])
    assert len(original["raw.admin_penalty"]) == len(served) and original["quarantine.rows"]
    assert all(load[8].startswith("packs/") for load in original["ops.loads"])  # archive_path: a page of a pack
    # A page after the first asks again from the watermark: the repeated record was dropped, and stays dropped.
    assert sum(r.rows_received for r in results) == len(served)

    manifests = select_manifests(since=date(2000, 1, 1))
    assert sorted(m["load_id"] for m in manifests) == sorted(r.load_id for r in results)
    assert [m["kind"] for m in select_manifests(load_id=results[1].load_id)] == ["page"]
    again = replay(manifests, registry)
    assert {r.outcome for r in again} == {"already_landed"}
    with psycopg.connect(platform) as conn:
        assert differences(original, landed_state(conn, ["admin_penalty"])) == []
        empty_warehouse(conn, ["admin_penalty"])

    restored = replay(select_manifests(since=date(2000, 1, 1)), registry)
    assert [r.outcome for r in restored] == ["landed"] * 3
    assert sorted(r.status for r in restored) == sorted(load[9] for load in original["ops.loads"])  # same verdicts
    with psycopg.connect(platform) as conn:
        assert differences(original, landed_state(conn, ["admin_penalty"])) == []
