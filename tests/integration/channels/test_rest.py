"""The REST channel end to end: the demo's 交通运输局 gateway (HMAC, pages, updated-since) → ledger → raw.

Through :func:`huiju.pipeline.collect` against the real simulated gateway on loopback and the
session's warehouse database: exact record sets, reruns, a SIGKILL mid-run, retries, schema
drift and bad credentials.
"""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import psycopg
import pytest
from huiju_connectors.rest import RestError
from huiju_demo.generate import generate_records
from huiju_demo.rest_gateway import RestGateway
from huiju_demo.simulators.rest import connection_for, gateway_for
from huiju_demo.webservice import stamped

from huiju.archive import read_archived
from huiju.pipeline import collect
from huiju.validation import validate_load
from tests.support.processes import kill_when
from tests.support.webservice import (
    DAY,
    connection_info,
    cursor_of,
    landed,
    loads,
    processes_running,
    served_variant,
    start_worker,
    variant,
)

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("webservice_platform")]

BASE = "jtj_penalty"
SECRET = "test-app-secret"


def _setup(rows: int, **updates: object) -> tuple:
    return served_variant(BASE, rows, **updates)


def _run(registry, source, gateway: RestGateway) -> list:
    return collect(source.id, DAY, registry, connection_info(source.connection, connection_for(gateway)))


def test_a_run_lands_exactly_the_served_records_and_quarantines_the_departments_rows(pg_url: str) -> None:
    registry, source, served, submission = _setup(40)  # page_size 500: one page, as in the demo
    with gateway_for(source, served, secret=SECRET).running() as gateway:
        results = _run(registry, source, gateway)
    assert [r.outcome for r in results] == ["landed"]
    rows = landed(pg_url, source.id)
    assert sorted(r[0] for r in rows) == sorted(r["CF_WSH"] for r in served)
    # Row numbers are the records' positions, as in the manifest.
    assert {r[0]: r[1] for r in rows} == {rec["CF_WSH"]: i for i, rec in enumerate(served, start=1)}
    ledger = loads(pg_url, source.id)
    assert ledger[0][1:3] == ("received", 40)
    # GXSJ (the update time) is kept in _extra: the dataset has no field for it, nothing is dropped.
    assert ledger[0][3] == ["fields not in the configuration were kept in _extra: GXSJ"]
    with psycopg.connect(pg_url) as conn:
        validate_load(conn, registry, results[0].load_id)
        conn.commit()
        quarantined = {r[0] for r in conn.execute("select row_no from quarantine.rows where load_id = %s",
                                                  (results[0].load_id,))}
    assert quarantined == {bad.row for bad in submission.bad_rows} and quarantined


def test_pages_rerun_and_next_day_land_each_record_once(pg_url: str) -> None:
    registry, source, served, _ = _setup(45, page_size=10)
    gateway = gateway_for(source, served, secret=SECRET)
    with gateway.running():
        first = _run(registry, source, gateway)
        assert len(first) == 5 and all(r.outcome == "landed" for r in first)
        assert sorted(r[0] for r in landed(pg_url, source.id)) == sorted(r["CF_WSH"] for r in served)
        cursor = cursor_of(pg_url, source.id)
        assert cursor["position"] is None and cursor["watermark"] == served[-1]["GXSJ"]
        before = loads(pg_url, source.id)
        # Every page is kept as received (in a pack with the pages landed beside it).
        with psycopg.connect(pg_url) as conn:
            archived = conn.execute("select sha256, bytes, archive_path from ops.loads where source_id = %s",
                                    (source.id,)).fetchall()
        assert len(archived) == 5
        for sha256, size, reference in archived:
            page = read_archived(reference)
            assert len(page) == size and hashlib.sha256(page).hexdigest() == sha256

        # The same day again: nothing new, no ledger row, nothing landed twice.
        assert _run(registry, source, gateway) == []
        assert loads(pg_url, source.id) == before

        # The next day the department adds records and updates one: a new window from the watermark.
        records, _ = generate_records(registry, source, DAY.replace(day=21), rows=12)
        newer = stamped(records, "GXSJ", DAY.replace(day=21))
        updated = {**served[3], "CF_CFLB": "警告", "GXSJ": newer[-1]["GXSJ"]}
        gateway.extend([*newer, updated])
        second = _run(registry, source, gateway)
    assert sum(r.rows_received for r in second) == 13
    keys = [r[0] for r in landed(pg_url, source.id)]
    assert len(keys) == 45 + 13 and len(set(keys)) == 45 + 12  # the update is a new version of one record


def test_sigkill_mid_run_then_rerun_lands_the_exact_record_set(pg_url: str, tmp_path: Path) -> None:
    _, source, served, _ = _setup(60, page_size=7)
    gateway = gateway_for(source, served, secret=SECRET)
    gateway.faults.block_at = 4  # the 4th request hangs: the worker is killed waiting for it
    with gateway.running():
        connection = connection_for(gateway)
        worker = start_worker(tmp_path, pg_url, BASE, source.id, {"page_size": 7}, source.connection, connection)
        kill_when(worker, lambda: len(loads(pg_url, source.id)) == 3)
        assert worker.returncode == -signal.SIGKILL
        # Its page fetcher (a child process, waiting for the hung request) died with it.
        assert processes_running(str(tmp_path / "collect_worker.py")) == []
        partial = landed(pg_url, source.id)
        assert 0 < len(partial) < 60
        # The cursor is never ahead of landed data: its watermark is the newest landed update time.
        stamps = {r["CF_WSH"]: r["GXSJ"] for r in served}
        cursor = cursor_of(pg_url, source.id)
        assert cursor["watermark"] == max(stamps[k] for k, _, _ in partial)
        assert {tuple(k) for k in cursor["seen_keys"]} <= {(k,) for k, _, _ in partial}

        gateway.faults.unblock()
        worker = start_worker(tmp_path, pg_url, BASE, source.id, {"page_size": 7}, source.connection, connection)
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
    assert sorted(k for k, _, _ in landed(pg_url, source.id)) == sorted(stamps)  # every record, once


def test_server_errors_and_rate_limiting_are_retried(pg_url: str) -> None:
    registry, source, served, _ = _setup(15, page_size=10)
    gateway = gateway_for(source, served, secret=SECRET)
    gateway.faults.pending = [({"pageNum": "1"}, "500"), ({"pageNum": "1"}, "429")]
    with gateway.running():
        results = _run(registry, source, gateway)
    assert sum(r.rows_received for r in results) == 15
    assert len(gateway.requests) >= 4  # two refused attempts, then the pages
    assert sorted(k for k, _, _ in landed(pg_url, source.id)) == sorted(r["CF_WSH"] for r in served)


def test_schema_drift_warns_or_holds(pg_url: str) -> None:
    registry, source, served, _ = _setup(5)
    drifted = [{**r, "WFXW": "违法行为描述"} for r in served]  # a field the gateway started to send
    with gateway_for(source, drifted, secret=SECRET).running() as gateway:
        results = _run(registry, source, gateway)
    warnings = loads(pg_url, source.id)[0][3]
    assert any("WFXW" in w and "new field" in w for w in warnings), warnings
    assert results[0].rows_received == 5

    # drift: hold — the page is recorded as held with the reason; the run does not fail.
    registry, held, served, _ = _setup(5, drift="hold")
    renamed = [{**{("WFXW" if k == "CF_NR" else k): v for k, v in r.items()}} for r in served]  # 处罚内容 renamed
    with gateway_for(held, renamed, secret=SECRET).running() as gateway:
        for _ in range(2):  # rerunning while it is still drifted changes nothing
            results = _run(registry, held, gateway)
            assert [r.outcome for r in results] == ["held"]
            assert "WFXW" in (results[0].error or "") and "CF_NR" in (results[0].error or "")
            [(load_id, status, rows, _)] = loads(pg_url, held.id)
            assert (load_id, status, rows) == (results[0].load_id, "held", None)
            assert landed(pg_url, held.id) == [] and cursor_of(pg_url, held.id) is None
        with psycopg.connect(pg_url) as conn:
            error, archive = conn.execute("select error, archive_path from ops.loads where load_id = %s",
                                          (load_id,)).fetchone()
        assert "schema drift" in error and archive  # the page as received is kept for the steward

        # The steward maps the renamed field: the same page now lands, under the same load id.
        columns = {("WFXW" if k == "CF_NR" else k): v for k, v in held.columns.items()}
        fixed = held.model_copy(update={"columns": columns})
        registry = registry.model_copy(update={"sources": {**registry.sources, held.id: fixed}})
        results = _run(registry, fixed, gateway)
    assert [(r.outcome, r.load_id) for r in results] == [("landed", load_id)]
    assert sorted(k for k, _, _ in landed(pg_url, held.id)) == sorted(r["CF_WSH"] for r in served)
    assert loads(pg_url, held.id)[0][1:3] == ("received", 5)


def test_row_numbers_continue_across_pages_and_queries(pg_url: str) -> None:
    """An advancing watermark restarts the query at page one; the run's row numbers go on."""
    registry, source, served, _ = _setup(23, page_size=5)
    with gateway_for(source, served, secret=SECRET).running() as gateway:
        results = _run(registry, source, gateway)
    assert sum(r.rows_received for r in results) == 23
    rows = landed(pg_url, source.id)
    assert sorted(n for _, n, _ in rows) == list(range(1, 24))
    order = {r["CF_WSH"]: i for i, r in enumerate(served, start=1)}
    assert all(order[key] == n for key, n, _ in rows)  # the department's own order


def test_a_wrong_app_secret_is_terminal_and_lands_nothing(pg_url: str) -> None:
    registry, source, served, _ = _setup(5)
    with gateway_for(source, served, secret=SECRET).running() as gateway:
        connection = {**connection_for(gateway), "password": "not-the-secret"}
        with pytest.raises(RestError) as caught:
            collect(source.id, DAY, registry, connection_info(source.connection, connection))
        assert caught.value.status == 401 and "not-the-secret" not in str(caught.value)
        assert caught.value.retryable is False  # the Airflow task fails without retrying
        assert len(gateway.requests) == 1
        assert landed(pg_url, source.id) == []
        # The refusal is in the ledger as a failed load, with the gateway's own words; a rerun
        # meeting the same refusal updates that row instead of adding one.
        with pytest.raises(RestError):
            collect(source.id, DAY, registry, connection_info(source.connection, connection))
    [(_, status, rows, _)] = loads(pg_url, source.id)
    assert (status, rows) == ("failed", None)
    with psycopg.connect(pg_url) as conn:
        [(error,)] = conn.execute("select error from ops.loads where source_id = %s", (source.id,)).fetchall()
    assert "签名校验失败" in error and "HTTP 401" in error and "not-the-secret" not in error


def test_batched_landing_makes_exactly_what_land_records_makes(pg_url: str) -> None:
    import psycopg

    from huiju.landing import RecordBatch, land_record_batches, land_records
    from huiju.ledger import make_content_id

    registry, one, served, _ = _setup(12)
    registry, many = variant(registry, BASE)
    # Values the fast COPY path must hand to the general one: escapes, non-text, extra and missing keys.
    served[1]["XDR_MC"] = "甲\t乙\n丙\\N 丁\r"
    served[2]["CF_FKJE"] = 12.5
    served[3]["CF_NR"] = {"说明": "含\"引号\"与\\反斜杠"}
    served[4] = {**served[4], "WFXW": ["a\tb", None]}
    del served[5]["CF_CFLB"]
    served[6]["CF_NR"] = ""
    served[7]["CF_NR"] = "\\N"
    pages = [(f"/api/v1/xzcf?pageNum={n}", served[i:i + 6], f"{n}".encode() * 10, i + 1)
             for n, i in ((1, 0), (2, 6))]
    with psycopg.connect(pg_url) as conn:
        for reference, records, payload, first in pages:
            land_records(conn, registry, one, reference=reference, content_id=make_content_id(reference, "one"),
                         records=records, payload=payload, first_row_no=first, warnings=["w"],
                         cursor={"after": reference})
        batches = [RecordBatch(reference, make_content_id(reference, "many"), records, payload, first_row_no=first,
                               warnings=("w",)) for reference, records, payload, first in pages]
        results = land_record_batches(conn, registry, many, batches, cursor={"after": pages[-1][0]})
        assert [r.outcome for r in results] == ["landed", "landed"]
        again = land_record_batches(conn, registry, many, batches, cursor={"after": pages[-1][0]})
        assert [r.outcome for r in again] == ["already_landed", "already_landed"]

        def raw(source_id: str) -> list[tuple]:
            return conn.execute(
                "select r._source_ref, r._row_no, r._extra, r.decision_no, r.party_name, r.fine_amount_wan,"
                " r.penalty_content, r.penalty_type"
                " from raw.admin_penalty r join ops.loads l on l.load_id = r._load_id where l.source_id = %s"
                " order by 1, 2", (source_id,)).fetchall()

        def ledger(source_id: str) -> list[tuple]:
            return conn.execute("select reference, sha256, bytes, archive_path, status, rows_received, warnings"
                                " from ops.loads where source_id = %s order by reference", (source_id,)).fetchall()

        assert raw(one.id) == raw(many.id) and len(raw(one.id)) == 12
        by_key = {row[3]: row for row in raw(many.id)}
        assert by_key[served[1]["CF_WSH"]][4] == "甲\t乙\n丙\\N 丁\r"
        assert by_key[served[2]["CF_WSH"]][5] == "12.5"
        assert by_key[served[4]["CF_WSH"]][2]["WFXW"] == ["a\tb", None]
        assert by_key[served[5]["CF_WSH"]][7] is None and by_key[served[6]["CF_WSH"]][6] == ""
        assert by_key[served[7]["CF_WSH"]][6] == "\\N"
        assert ledger(one.id) == ledger(many.id)
    assert cursor_of(pg_url, one.id) == cursor_of(pg_url, many.id) == {"after": pages[-1][0]}


def test_a_record_with_text_that_cannot_be_stored_is_quarantined_and_the_page_lands(pg_url: str) -> None:
    registry, source, served, _ = _setup(12, page_size=5)
    served[6] = {**served[6], "XDR_MC": served[6]["XDR_MC"] + "\ud800"}  # an unpaired surrogate: "\ud800" in JSON
    with gateway_for(source, served, secret=SECRET).running() as gateway:
        results = _run(registry, source, gateway)
        # Each new window re-reads the newest record landed before: pages after the first keep 4 and 3.
        assert [(r.outcome, r.rows_received, r.rows_rejected) for r in results] == [
            ("landed", 5, 0), ("landed", 4, 1), ("landed", 3, 0)]
        assert _run(registry, source, gateway) == []  # a rerun lands nothing twice
    rows = landed(pg_url, source.id)
    assert sorted(r[0] for r in rows) == sorted(r["CF_WSH"] for i, r in enumerate(served) if i != 6)
    with psycopg.connect(pg_url) as conn:
        quarantined = conn.execute("select row_no, reasons, violations from quarantine.rows where load_id = %s",
                                   (results[1].load_id,)).fetchall()
        ledger = conn.execute("select rows_received from ops.loads where load_id = %s",
                              (results[1].load_id,)).fetchone()
    assert [row_no for row_no, *_ in quarantined] == [7] and ledger == (4,)
    assert "XDR_MC" in quarantined[0][1] and "\\ud800" in quarantined[0][2][0]["value"]
    with psycopg.connect(pg_url) as conn:  # validation takes the load with its row quarantined at landing
        validate_load(conn, registry, results[1].load_id)
        conn.commit()
        assert 7 in {r[0] for r in conn.execute("select row_no from quarantine.rows where load_id = %s",
                                                (results[1].load_id,))}
