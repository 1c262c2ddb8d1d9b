"""The SOAP channel end to end: the demo's 公安局 WebService (vendored WSDL, UsernameToken, paged) → raw.

Through :func:`huiju.pipeline.collect` against the simulated service on loopback and the
session's warehouse database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from huiju_connectors.soap import SoapBusinessFault
from huiju_demo.simulators.soap import connection_for, service_for
from huiju_demo.soap_service import SoapService

from huiju.pipeline import collect
from tests.support.processes import kill_when
from tests.support.webservice import DAY, connection_info, cursor_of, landed, loads, served_variant, start_worker

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("webservice_platform")]

BASE = "gaj_penalty"
USER, PASSWORD = "huiju", "pa55-word"


def _setup(rows: int, **updates: object) -> tuple:
    return served_variant(BASE, rows, **updates)


def _run(registry, source, service: SoapService, **changes: object) -> list:
    connection = {**connection_for(service), **changes}
    return collect(source.id, DAY, registry, connection_info(source.connection, connection))


def test_pages_land_exactly_the_served_records_once_and_rerun_lands_nothing(pg_url: str) -> None:
    registry, source, served, submission = _setup(23, page_size=10)
    service = service_for(source, served, username=USER, password=PASSWORD)
    with service.running():
        first = _run(registry, source, service)
        # Each page after the first asks again from the watermark (inclusive): one record repeats, dropped.
        assert [r.rows_received for r in first] == [10, 9, 4]
        rows = landed(pg_url, source.id)
        assert sorted(k for k, _, _ in rows) == sorted(r["decisionNo"] for r in served)
        # Values arrive as the department sent them (an impossible date stays text for validation).
        bad_dates = [b for b in submission.bad_rows if ("decision_date", "date") in b.defects]
        assert all(b.decision_no in {k for k, _, _ in rows} for b in bad_dates)
        assert cursor_of(pg_url, source.id)["position"] is None
        before = loads(pg_url, source.id)
        assert _run(registry, source, service) == []
        assert loads(pg_url, source.id) == before
    assert len(service.calls) == 3 + 1  # the rerun asked once, from the watermark


def test_a_single_page_numbers_rows_as_the_manifest_does(pg_url: str) -> None:
    registry, source, served, submission = _setup(30)
    with service_for(source, served, username=USER, password=PASSWORD).running() as service:
        (result,) = _run(registry, source, service)
    rows = landed(pg_url, source.id)
    assert {k: n for k, n, _ in rows} == {r["decisionNo"]: i for i, r in enumerate(served, start=1)}
    assert {b.decision_no: b.row for b in submission.bad_rows} == {
        k: n for k, n, _ in rows if k in {b.decision_no for b in submission.bad_rows}}
    assert result.warnings == ["fields not in the configuration were kept in _extra: updateTime"]


def test_a_wrong_password_is_a_business_fault_and_lands_nothing(pg_url: str) -> None:
    registry, source, served, _ = _setup(5)
    with service_for(source, served, username=USER, password=PASSWORD).running() as service, \
            pytest.raises(SoapBusinessFault, match="认证失败") as caught:
        _run(registry, source, service, password="guess")
    assert caught.value.retryable is False  # not retried, by the connector or by Airflow
    assert len(service.calls) == 1
    assert landed(pg_url, source.id) == []
    # Reported: a failed load carrying the department's fault text.
    [(_, status, rows, _)] = loads(pg_url, source.id)
    assert (status, rows) == ("failed", None)


def test_a_server_fault_is_retried(pg_url: str) -> None:
    registry, source, served, _ = _setup(12, page_size=5)
    service = service_for(source, served, username=USER, password=PASSWORD)
    service.faults.pending = [({"pageNo": "1"}, "500")]
    with service.running():
        results = _run(registry, source, service)
    assert sum(r.rows_received for r in results) == 12


def test_sigkill_mid_run_then_rerun_lands_the_exact_record_set(pg_url: str, tmp_path: Path) -> None:
    _, source, served, _ = _setup(40, page_size=6)
    service = service_for(source, served, username=USER, password=PASSWORD)
    service.faults.block_at = 3
    with service.running():
        connection = connection_for(service)
        worker = start_worker(tmp_path, pg_url, BASE, source.id, {"page_size": 6}, source.connection, connection)
        kill_when(worker, lambda: len(loads(pg_url, source.id)) == 2)
        partial = landed(pg_url, source.id)
        stamps = {r["decisionNo"]: r["updateTime"] for r in served}
        assert 0 < len(partial) < 40
        assert cursor_of(pg_url, source.id)["watermark"] == max(stamps[k] for k, _, _ in partial)
        service.faults.unblock()
        worker = start_worker(tmp_path, pg_url, BASE, source.id, {"page_size": 6}, source.connection, connection)
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
    assert sorted(k for k, _, _ in landed(pg_url, source.id)) == sorted(stamps)  # every record, once
