"""The dbt warehouse on a real PostgreSQL: daily incremental builds equal a full refresh, every layer
fills, history is kept, pseudonyms are keyed HMACs, publishable data is masked and withdrawn.

One database for the module: three daily batches (with a late record, corrections of earlier
decisions — one moving a penalty to another legal person — and a quarantined row), built
incrementally after each day, then compared table by table with a full refresh of the same data.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from huiju.demo.bulk import valid_id_number, valid_uscc, write_penalty_csv
from huiju.registry import load_registry
from huiju.transform import pseudonym_key, run_dbt
from tests.dbt.helpers import land_and_publish

pytestmark = pytest.mark.integration

LAYERS = ("staging", "basic", "thematic", "archive", "credit", "share")
ROWS = 300
TAX_ROWS = 100  # codes repeat every 1,000 rows: day-1 rows past this index have USCCs only day 1 has
MOVED = "测罚〔2026〕D1200号"


def _contents(url: str) -> dict[str, list[tuple]]:
    """Every dbt-built relation's rows (sorted), snapshots left out (they are history by design)."""
    with psycopg.connect(url) as conn:
        relations = conn.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_schema = any(%s) and table_name not like 'snap\\_%%'", (list(LAYERS),)).fetchall()
        out = {}
        for schema, name in relations:
            rows = conn.execute(sql.SQL("select * from {}").format(sql.Identifier(schema, name))).fetchall()
            out[f"{schema}.{name}"] = sorted(rows, key=repr)
    return out


@pytest.fixture(scope="module")
def built(make_database, tmp_path_factory: pytest.TempPathFactory) -> dict:
    url = make_database("dbt")
    from huiju import warehouse

    warehouse.migrate(url)
    work = tmp_path_factory.mktemp("dbt")
    target = work / "target"
    registry = load_registry()
    market, tax = registry.source("scjgj_penalty"), registry.source("swj_penalty")

    def header(source, field: str) -> str:
        return source.header_for_field[field]

    # Day 1: market regulation, ROWS penalties (decisions 测罚〔2026〕D1<i>号).
    day1 = write_penalty_csv(work / "day1.csv", market, ROWS, tag="D1")
    land_and_publish(url, "scjgj_penalty", day1, registry, quarantine_rows=[5])  # row 5 = index 3
    run_dbt(["build"], url, target_path=target)
    after_day1 = _contents(url)

    # Day 2: tax. Index 0 is a late record (decided two years ago); index 1 corrects nothing (new).
    day2 = write_penalty_csv(work / "day2.csv", tax, TAX_ROWS, tag="D2", encoding="utf-8-sig", overrides={
        0: {header(tax, "decision_date"): "2024-01-15", header(tax, "publish_until"): "2025-01-15"},
    })
    land_and_publish(url, "swj_penalty", day2, registry)
    # Day 2, second batch of market regulation: corrections of day-1 decisions — one with a new fine,
    # one moved to another legal person (a wrong USCC corrected), one natural person's.
    corrections = write_penalty_csv(work / "day2_corrections.csv", market, 3, tag="D1", overrides={
        0: {header(market, "fine_amount_wan"): "9.99"},
        1: {header(market, "decision_no"): MOVED,
            header(market, "uscc"): valid_uscc(99_001), header(market, "party_name"): "更正后企业有限公司",
            header(market, "legal_rep_id_no"): valid_id_number(99_001)},
        2: {header(market, "party_type"): "自然人", header(market, "party_name"): "王小明",
            header(market, "uscc"): "", header(market, "legal_rep"): "", header(market, "legal_rep_id_no"): ""},
    })
    land_and_publish(url, "scjgj_penalty", corrections, registry)
    run_dbt(["build"], url, target_path=target)

    # Day 3: the quarantined day-1 decision arrives corrected, plus a few new ones.
    day3 = write_penalty_csv(work / "day3.csv", market, 4, tag="D3", overrides={
        0: {header(market, "decision_no"): "测罚〔2026〕D13号"},
    })
    land_and_publish(url, "scjgj_penalty", day3, registry)
    run_dbt(["build"], url, target_path=target)
    incremental = _contents(url)

    run_dbt(["build", "--full-refresh"], url, target_path=target)
    full = _contents(url)
    return {"url": url, "after_day1": after_day1, "incremental": incremental, "full": full}


def test_an_incremental_build_equals_a_full_refresh(built: dict) -> None:
    incremental, full = built["incremental"], built["full"]
    assert set(incremental) == set(full)
    for relation in sorted(full):
        assert incremental[relation] == full[relation], f"{relation}: incremental and full refresh differ"


def test_every_layer_has_rows(built: dict) -> None:
    for layer in LAYERS:
        assert any(rows for name, rows in built["full"].items() if name.startswith(f"{layer}.")), layer


def test_corrections_replace_and_history_keeps_both_versions(built: dict) -> None:
    with psycopg.connect(built["url"]) as conn:
        fine, versions = conn.execute("select fine_amount_wan, version_count from credit.credit_admin_penalty"
                                      " where decision_no = '测罚〔2026〕D10号'").fetchone()
        moved = conn.execute("select uscc, party_name from credit.credit_admin_penalty"
                             " where decision_no = %s", (MOVED,)).fetchone()
        history = conn.execute("select count(*), count(*) filter (where dbt_valid_to is null)"
                               " from credit.snap_credit_admin_penalty"
                               " where decision_no = '测罚〔2026〕D10号'").fetchone()
        staged = conn.execute("select count(*) from staging.stg_raw__admin_penalty").fetchone()[0]
        late = conn.execute("select count(*) from credit.credit_admin_penalty"
                            " where decision_no = '测罚〔2026〕D13号'").fetchone()[0]
    assert (float(fine), versions) == (9.99, 2)
    assert moved == (valid_uscc(99_001), "更正后企业有限公司")
    assert history == (2, 1)
    assert staged == (ROWS - 1) + TAX_ROWS + 3 + 4  # every version of every good row
    assert late == 1  # quarantined on day 1, delivered corrected on day 3


def test_a_legal_person_left_without_penalties_is_gone_incrementally_too(built: dict) -> None:
    # The USCC the correction took decision D1200 away from had only that penalty: the full refresh
    # does not have it, so neither may the incremental build.
    old = valid_uscc(200)
    for contents in (built["incremental"], built["full"]):
        assert old not in {row[0] for row in contents["basic.basic_legal_person"]}
    assert old in {row[0] for row in built["after_day1"]["basic.basic_legal_person"]}


def test_population_key_is_the_keyed_hmac_of_the_id_number(built: dict) -> None:
    id_number = valid_id_number(7)
    expected = hmac.new(pseudonym_key().encode(), id_number.encode(), hashlib.sha256).hexdigest()
    with psycopg.connect(built["url"]) as conn:
        found = conn.execute("select person_key, gender, birth_date from basic.basic_population"
                             " where person_key = %s", (expected,)).fetchone()
        stored = conn.execute("select count(*) from basic.basic_population"
                              " where person_key = encode(sha256(convert_to(%s, 'UTF8')), 'hex')",
                              (id_number,)).fetchone()[0]
    assert found is not None and found[0] == expected
    assert stored == 0  # never the bare hash


def test_publishable_sets_mask_natural_persons_and_drop_expired_records(built: dict) -> None:
    with psycopg.connect(built["url"]) as conn:
        name = conn.execute("select party_name from share.share_natural_person_penalty_publication"
                            " where decision_no = '测罚〔2026〕D12号'").fetchone()
        ids = conn.execute("select legal_rep_id_no from share.share_legal_person_penalty_publication"
                           " limit 5").fetchall()
        expired = conn.execute("select is_publishable from credit.credit_legal_person_penalty"
                               " where decision_no = '测罚〔2026〕D20号'").fetchone()
        published = conn.execute("select count(*) from share.share_legal_person_penalty_publication"
                                 " where decision_no = '测罚〔2026〕D20号'").fetchone()[0]
    assert name == ("王**",)
    assert ids and all(value[6:-4] == "********" for (value,) in ids)
    assert expired == (False,) and published == 0


def test_the_docs_and_manifest_never_carry_the_pseudonym_key(built: dict, tmp_path: Path) -> None:
    run_dbt(["docs", "generate"], built["url"], target_path=tmp_path)
    key = pseudonym_key()
    for name in ("manifest.json", "catalog.json"):
        assert key not in (tmp_path / name).read_text(encoding="utf-8")
