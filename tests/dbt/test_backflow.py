"""The province's backflow (省回流) through the warehouse, penalties and licences: validated with the same
rules, one record with the city's own where the same decision came from a city department, landed with its
origin, forwarded to the city credit platform and never due at the province — incrementally as after a full
refresh; national codes sent for 类别 items decoded (an unknown one quarantined); reported per day as the
push component's role reads it (the credit layer, never staging).

Batches are landed as the REST channel lands a page (``land_records``) under each source's own item codes
(the city gateway's 双公示 v1, the province's v2: config/item_sets/), validated with the real rules (GX left
out) and published; what is due at each target is computed from the repository's push targets.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from huiju_demo.bulk import license_row, penalty_row
from psycopg import sql

from huiju.landing import land_records
from huiju.monitoring.ledger import today as business_day
from huiju.push.backflow import backflow_report
from huiju.push.outbox import compute_due
from huiju.push.targets import load_targets
from huiju.registry import ORIGIN_BACKFLOW, ORIGIN_LOCAL, Registry, load_registry
from huiju.transform import run_dbt
from huiju.validation import publish_load, validate_load
from huiju.warehouse import connect, role_url

CITY, PROVINCE = "jtj_penalty", "province_penalty_backflow"
LICENSING_CITY, LICENSING_PROVINCE = "scjgj_license", "province_license_backflow"
TODAY = date(2026, 3, 20)
#: The models whose rows must not depend on how the build got there (incremental or full refresh).
COMPARED = ("credit.credit_admin_penalty", "credit.credit_admin_penalty_history",
            "analysis.analysis_penalty_facts", "credit.credit_publication_timeliness")
#: What the pushes read and the compared models, with what they are built from.
BUILT = ("+credit_legal_person_penalty +credit_natural_person_penalty +credit_legal_person_license"
         " +credit_admin_penalty_history +analysis_penalty_facts +credit_publication_timeliness"
         " +credit_backflow_versions")
#: A valid row of each dataset, keyed by a source's own headers.
ROWS = {"admin_penalty": penalty_row, "admin_license": license_row}


def _decision(tag: str, serial: int) -> str:
    return f"测罚〔2026〕{tag}{serial}号"


def _licence(tag: str, serial: int) -> str:
    return f"测许〔2026〕{tag}{serial}号"


def _deliver(url: str, registry: Registry, source_id: str, rows: list[tuple[str, int]], batch: str,
             **changed: str) -> tuple[set[int], bool]:
    """One page of ``source_id`` (rows by tag and serial, ``changed`` fields overridden) landed, validated
    and published unless over its tolerance; (the row numbers quarantined, whether it was published)."""
    source = registry.source(source_id)
    records = []
    for tag, serial in rows:
        record = ROWS[source.dataset](source, serial, tag)
        for field, value in changed.items():
            record[source.header_for_field[field]] = value
        records.append(record)
    with psycopg.connect(role_url("landing", url)) as conn:
        landed = land_records(conn, registry, source, reference=f"{source_id}-{batch}", content_id=batch,
                              records=records)
    assert landed.outcome == "landed", landed
    with psycopg.connect(role_url("validation", url)) as conn:
        validate_load(conn, registry, landed.load_id, run_gx=False)
        published = publish_load(conn, landed.load_id)
        origin = conn.execute("select origin from ops.loads where load_id = %s", (landed.load_id,)).fetchone()[0]
        quarantined = {row_no for (row_no,) in conn.execute("select row_no from quarantine.rows where load_id = %s",
                                                            (landed.load_id,))}
    assert origin == source.origin
    return quarantined, published


def _records(url: str) -> dict[str, tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return {no: (origin, department, authority) for no, origin, department, authority in conn.execute(
            "select decision_no, origin, source_department, authority from credit.credit_admin_penalty")}


def _due(url: str, registry: Registry, item_set: str = "CF") -> dict[str, set[str]]:
    """Queue what is due at every target of config/push_targets/; the decisions of ``item_set`` each has ever
    been due."""
    targets = load_targets(registry)
    with connect(url, role="push") as conn:
        for target in targets.targets.values():
            compute_due(conn, registry, target, today=TODAY)
        rows = conn.execute("select target, record_key from ops.push_outbox where action = 'upsert'"
                            " and record_key like %s", (f"{item_set}:%",)).fetchall()
    due: dict[str, set[str]] = {name: set() for name in targets.targets}
    for target, key in rows:
        due[target].add(key.removeprefix(f"{item_set}:"))
    return due


def _report(url: str, registry: Registry, source_id: str = PROVINCE) -> dict[str, Any]:
    """The backflow report's row of ``source_id``, read as ``huiju push report`` reads it: as the push component,
    whose role reads the credit layer and the ledger, never staging; its rows per day add up to it."""
    with connect(url, role="push") as conn:
        targets = load_targets(registry)
        (row,) = [r for r in backflow_report(conn, registry, targets) if r["source"] == source_id]
        (day,) = [r for r in backflow_report(conn, registry, targets, by_day=True) if r["source"] == source_id]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select 1 from staging.stg_landing__admin_penalties limit 1")
        conn.rollback()
    assert day == {**row, "day": business_day()}  # one day here: every batch arrived today
    return {key: value for key, value in row.items() if key != "day"}


def _state(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {name: sorted(tuple(str(v) for v in row) for row in conn.execute(
                    sql.SQL("select * from {}").format(sql.Identifier(*name.split(".")))))
                for name in COMPARED}


@pytest.mark.timeout(900)
def test_the_backflow_is_one_record_with_the_citys_own_and_never_goes_back_to_the_province(
        make_database, tmp_path: Path) -> None:
    registry = load_registry()
    url = make_database("backflow", migrated=True)
    target = tmp_path / "target"

    # Day 1: the city gateway sends B1; the province sends B1 back (its own wording of the authority), B2
    # (which the city will send tomorrow) and S1, S2 that only the province has.
    assert _deliver(url, registry, CITY, [("B", 1)], "city-1") == (set(), True)
    # Validated with the same rules: a decision a city department published is not a conflict (it is the
    # same record), nor the other way round; a bad ID number is quarantined as in any department's batch
    # (and a batch of nothing else is held, over the source's tolerance).
    assert _deliver(url, registry, PROVINCE, [("B", 1), ("B", 2), ("S", 1), ("S", 2)], "province-1",
                    authority="省回流处罚机关") == (set(), True)
    # GB 11643-1999's example number with its check digit changed (X → 1): invalid by construction, nobody's.
    assert _deliver(url, registry, PROVINCE, [("S", 3)], "province-bad",
                    legal_rep_id_no="110105194912310021") == ({1}, False)
    run_dbt(["build", "--indirect-selection", "cautious", "--select", BUILT], url, target_path=target)
    records = _records(url)
    assert records == {
        _decision("B", 1): (ORIGIN_LOCAL, "jtj", "测试市市场监督管理局"),  # one record: the city's, origin kept
        _decision("B", 2): (ORIGIN_BACKFLOW, "province", "省回流处罚机关"),
        _decision("S", 1): (ORIGIN_BACKFLOW, "province", "省回流处罚机关"),
        _decision("S", 2): (ORIGIN_BACKFLOW, "province", "省回流处罚机关"),
    }
    due = _due(url, registry)
    assert due["city_credit"] == set(records)  # the backflow is forwarded to the city credit platform …
    assert due["province_share"] == {_decision("B", 1)}  # … and never pushed back up to the province
    assert _report(url, registry) == {"source": PROVINCE, "batches": 1, "received": 4, "quarantined": 0,
                                      "city_own": 1, "backflow_records": 3,
                                      "forwarded": {"city_credit": 3, "province_share": 0}}
    with psycopg.connect(url) as conn:  # 双公示 timeliness is the city departments' duty only
        assert {d for (d,) in conn.execute("select distinct source_department"
                                           " from credit.credit_publication_timeliness")} == {"jtj"}

    # Day 2: the city sends B2 — no conflict with the province's earlier copy; the record becomes the city's
    # and goes up to the province; the province-only records still never do.
    assert _deliver(url, registry, CITY, [("B", 2)], "city-2") == (set(), True)
    run_dbt(["build", "--indirect-selection", "cautious", "--select", BUILT], url, target_path=target)
    records = _records(url)
    assert records[_decision("B", 2)] == (ORIGIN_LOCAL, "jtj", "测试市市场监督管理局")
    assert {no for no, (origin, *_) in records.items() if origin == ORIGIN_BACKFLOW} == {
        _decision("S", 1), _decision("S", 2)}
    due = _due(url, registry)
    assert due["province_share"] == {_decision("B", 1), _decision("B", 2)}
    assert due["city_credit"] == set(records)
    assert _report(url, registry)["city_own"] == 2 and _report(url, registry)["backflow_records"] == 2
    with psycopg.connect(url) as conn:  # one history: the city's versions only for a decision the city sent
        history = conn.execute("select decision_no, origin, count(*) from credit.credit_admin_penalty_history"
                               " group by 1, 2 order by 1").fetchall()
    assert history == [(_decision("B", 1), ORIGIN_LOCAL, 1), (_decision("B", 2), ORIGIN_LOCAL, 1),
                       (_decision("S", 1), ORIGIN_BACKFLOW, 1), (_decision("S", 2), ORIGIN_BACKFLOW, 1)]

    incremental = _state(url)
    run_dbt(["build", "--indirect-selection", "cautious", "--select", BUILT, "--full-refresh"], url, target_path=target)
    assert _state(url) == incremental


@pytest.mark.timeout(900)
def test_the_licence_backflow_is_one_record_with_the_citys_own_and_never_goes_back_to_the_province(
        make_database, tmp_path: Path) -> None:
    registry = load_registry()
    url = make_database("backflow_licence", migrated=True)
    # The market regulator grants L1; the province hands L1 back and sends P2, only it has, both with their
    # 类别 items as national codes (行政相对人类别 1, 许可类别 01), which landing turns into names.
    assert _deliver(url, registry, LICENSING_CITY, [("L", 1)], "city-l1") == (set(), True)
    assert _deliver(url, registry, LICENSING_PROVINCE, [("L", 1), ("P", 2)], "province-l1",
                    party_type="1", license_category="01") == (set(), True)
    # A code no list holds: quarantined at landing (a batch of nothing else is held, over its tolerance).
    assert _deliver(url, registry, LICENSING_PROVINCE, [("P", 3)], "province-bad-code",
                    license_category="7") == ({1}, False)
    run_dbt(["build", "--indirect-selection", "cautious", "--select", BUILT], url, target_path=tmp_path / "target")
    with psycopg.connect(url) as conn:
        records = {no: rest for no, *rest in conn.execute(
            "select decision_no, origin, source_department, party_type, license_category, license_category_code"
            " from credit.credit_admin_license")}
    assert records == {
        _licence("L", 1): [ORIGIN_LOCAL, "scjgj", "法人及非法人组织", "普通", "1"],  # one record: the city's
        _licence("P", 2): [ORIGIN_BACKFLOW, "province", "法人及非法人组织", "普通", "1"],
    }
    due = _due(url, registry, "XK")
    assert due["city_credit"] == set(records)  # forwarded to the city credit platform …
    assert due["province_share"] == {_licence("L", 1)}  # … never pushed back up to the province
    assert _report(url, registry, LICENSING_PROVINCE) == {
        "source": LICENSING_PROVINCE, "batches": 1, "received": 2, "quarantined": 0, "city_own": 1,
        "backflow_records": 1, "forwarded": {"city_credit": 1, "province_share": 0}}
