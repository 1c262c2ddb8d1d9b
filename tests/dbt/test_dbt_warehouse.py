"""The dbt warehouse on a real PostgreSQL: daily incremental builds equal a full refresh, every layer
fills, history is kept, pseudonyms are keyed HMACs, publishable data is masked and withdrawn.

One database for the module: three daily batches (with a late record, corrections of earlier
decisions — one moving a penalty to another legal person — and a quarantined row), built
incrementally after each day, then compared table by table with a full refresh of the same data.
The registers (企业/税务/社会组织登记, 社保, 许可, 红黑名单, 户籍) arrive from day 2 on (day 1 builds
them empty, before any raw table exists): the demo's files of two days, validated with the real
rules (the quarantine must be the generator's), whose keys overlap (changed registrations), plus
corrections — a licence moved to another company, a list entry removed. Day 4 brings only a licence
correction that renames its 许可机关 (decided later than any of its decisions): no 户籍 or 参保 batch,
so the models recomputed only when those change keep what they hold.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from huiju_demo.bulk import valid_id_number, valid_uscc, write_penalty_csv
from huiju_demo.generate import generate_submissions
from psycopg import sql

from huiju.monitoring.monitor import publication_timeliness
from huiju.registry import load_registry
from huiju.transform import pseudonym, pseudonym_key, run_dbt
from huiju.warehouse import role_url
from tests.dbt.helpers import land_and_publish, land_validate_publish, register_sources

pytestmark = pytest.mark.integration

LAYERS = ("staging", "basic", "thematic", "archive", "credit", "share", "analysis")
ROWS = 300
TAX_ROWS = 100  # codes repeat every 1,000 rows: day-1 rows past this index have USCCs only day 1 has
MOVED = "测罚〔2026〕D1200号"
REGISTER_ROWS = 40
REGISTER_DAYS = (date(2026, 11, 19), date(2026, 11, 20))
RENAMED_AUTHORITY = "示范市市场和质量监督管理局"


def _correct(path: Path, out: Path, edit: dict[str, str], row: int = 0, encoding: str = "utf-8-sig") -> dict[str, str]:
    """A department's correction: data row ``row`` of a file sent again with fields (by header) changed."""
    with path.open(encoding=encoding, newline="") as handle:
        rows = list(csv.DictReader(handle))
    corrected = {**rows[row], **edit}
    with out.open("w", encoding=encoding, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow(corrected)
    return corrected


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


def _messages(target: Path) -> dict[str, str]:
    """The result message of every node of the last build (e.g. "unchanged", "INSERT 0 3")."""
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    return {result["unique_id"]: result["message"] for result in results}


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
    # Day 2, the registers' first files (their raw tables appear now).
    quarantine, manifests = {}, []
    manifest = generate_submissions(registry, work / "inbox1", REGISTER_DAYS[0], rows_per_source=REGISTER_ROWS,
                                    sources=register_sources(registry))
    manifests.append(manifest)
    for sub in manifest.submissions:
        quarantine[(sub.source_id, 1)] = land_validate_publish(url, sub.source_id, sub.path, registry)[1]
    run_dbt(["build"], url, target_path=target)

    # Day 3: the quarantined day-1 decision arrives corrected, plus a few new ones.
    day3 = write_penalty_csv(work / "day3.csv", market, 4, tag="D3", overrides={
        0: {header(market, "decision_no"): "测罚〔2026〕D13号"},
    })
    land_and_publish(url, "scjgj_penalty", day3, registry)
    # Day 3, the registers' next files: many keys again (changes), and two corrections.
    manifest = generate_submissions(registry, work / "inbox2", REGISTER_DAYS[1], rows_per_source=REGISTER_ROWS,
                                    sources=register_sources(registry))
    manifests.append(manifest)
    for sub in manifest.submissions:
        quarantine[(sub.source_id, 2)] = land_validate_publish(url, sub.source_id, sub.path, registry)[1]
    first = manifests[0]
    bad = {b.row for b in first.submission("scjgj_license").bad_rows}
    good_row = next(i for i in range(REGISTER_ROWS) if i + 2 not in bad)
    moved_licence = _correct(first.submission("scjgj_license").path, work / "licence_fix.csv",
                             {"统一社会信用代码": valid_uscc(77), "行政相对人名称": "许可更正后有限公司",
                              "行政相对人类别": "法人及非法人组织"}, row=good_row, encoding="gb18030")
    land_validate_publish(url, "scjgj_license", work / "licence_fix.csv", registry)
    bad = {b.row for b in first.submission("fgw_credit_list").bad_rows}
    good_row = next(i for i in range(REGISTER_ROWS) if i + 2 not in bad)
    removed_entry = _correct(first.submission("fgw_credit_list").path, work / "list_fix.csv",
                             {"移出日期": "2026-11-20"}, row=good_row)
    land_validate_publish(url, "fgw_credit_list", work / "list_fix.csv", registry)
    # … and an entry corrected to name a natural person (by ID number): the natural-person credit.
    good_row = next(i for i in range(good_row + 1, REGISTER_ROWS) if i + 2 not in bad)
    _correct(first.submission("fgw_credit_list").path, work / "list_fix2.csv",
             {"名单类型": "黑名单", "主体名称": "王小明", "主体类别": "自然人", "统一社会信用代码": "",
              "法定代表人": "", "证件号码（自然人）": valid_id_number(5), "移出日期": "",
              "有效期至": "2099-12-31"}, row=good_row)
    land_validate_publish(url, "fgw_credit_list", work / "list_fix2.csv", registry)
    run_dbt(["build"], url, target_path=target)

    # Day 4: one licence corrected — decided again later, by its authority under a new name.
    bad = {b.row for b in first.submission("scjgj_license").bad_rows}
    good_rows = [i for i in range(REGISTER_ROWS) if i + 2 not in bad]
    renamed_licence = _correct(first.submission("scjgj_license").path, work / "licence_fix2.csv",
                               {"许可机关": RENAMED_AUTHORITY, "许可决定日期": "2026-11-21", "有效期自": "2026-11-21",
                                "有效期至": "2029-11-20"}, row=good_rows[-1], encoding="gb18030")
    assert land_validate_publish(url, "scjgj_license", work / "licence_fix2.csv", registry)[1] == set()
    run_dbt(["build"], url, target_path=target)
    incremental = _contents(url)
    day4 = _messages(target)

    run_dbt(["build", "--full-refresh"], url, target_path=target)
    full = _contents(url)
    return {"url": url, "after_day1": after_day1, "incremental": incremental, "full": full,
            "manifests": manifests, "quarantine": quarantine, "moved_licence": moved_licence,
            "removed_entry": removed_entry, "renamed_licence": renamed_licence, "day4": day4,
            "manifest": json.loads((target / "manifest.json").read_text(encoding="utf-8"))}


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
                               " from credit.credit_admin_penalty_history"
                               " where decision_no = '测罚〔2026〕D10号'").fetchone()
        staged = conn.execute("select count(*) from staging.stg_landing__admin_penalties").fetchone()[0]
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
    expected = pseudonym(id_number)
    assert expected == "demo-" + hmac.new(pseudonym_key().encode(), id_number.encode(), hashlib.sha256).hexdigest()
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


def test_the_registers_quarantine_is_exactly_the_generators(built: dict) -> None:
    for day, manifest in enumerate(built["manifests"], start=1):
        for sub in manifest.submissions:
            expected = {(bad.row, bad.defects) for bad in sub.bad_rows}
            assert built["quarantine"][(sub.source_id, day)] == expected, (sub.source_id, day)
            assert expected, sub.source_id  # every register shows the quarantine


def test_every_new_model_has_rows(built: dict) -> None:
    for relation in ("staging.stg_landing__enterprise_registrations", "staging.stg_landing__tax_registrations",
                     "staging.stg_landing__social_org_registrations",
                     "staging.stg_landing__social_insurance_enrollments",
                     "staging.stg_landing__admin_licenses", "staging.stg_landing__credit_list_entries",
                     "staging.stg_landing__household_registrations", "basic.basic_spatial_division",
                     "thematic.thematic_enterprise_lifecycle", "thematic.thematic_social_insurance",
                     "credit.credit_admin_license", "credit.credit_legal_person_license",
                     "credit.credit_red_black_list", "credit.credit_legal_person_credit",
                     "credit.credit_natural_person_credit", "share.share_legal_person_license_publication",
                     "share.share_red_black_list_publication", "thematic.thematic_social_insurance_coverage",
                     "credit.credit_natural_person_license", "share.share_natural_person_license_publication",
                     "share.share_natural_person_red_black_list_publication",
                     "credit.credit_publication_timeliness"):
        assert built["full"][relation], relation


def test_registration_comes_first_in_the_legal_person_base(built: dict) -> None:
    with psycopg.connect(built["url"]) as conn:
        registered = conn.execute(
            "select count(*), count(*) filter (where b.legal_person_name = r.enterprise_name"
            " and b.legal_rep = r.legal_rep and b.registration_status = r.registration_status)"
            " from basic.basic_legal_person b join (select distinct on (uscc) * from"
            " staging.stg_landing__enterprise_registrations order by uscc, published_at desc, load_id desc,"
            " source_row_no desc) r using (uscc)").fetchone()
        both = conn.execute("select count(*) from basic.basic_legal_person"
                            " where is_registered and tax_credit_rating is not null").fetchone()[0]
    assert registered[0] > 0 and registered[0] == registered[1]
    assert both > 0  # registered by 市场监管 and by 税务: one row with both


def test_a_corrected_licence_moves_to_the_other_company(built: dict) -> None:
    decision_no = built["moved_licence"]["行政许可决定文书号"]
    with psycopg.connect(built["url"]) as conn:
        licence = conn.execute("select uscc, party_name, version_count from credit.credit_admin_license"
                               " where decision_no = %s", (decision_no,)).fetchone()
        profile = conn.execute("select license_count from archive.archive_legal_person_profile where uscc = %s",
                               (valid_uscc(77),)).fetchone()
        history = conn.execute("select count(*) from credit.snap_credit_admin_license where decision_no = %s",
                               (decision_no,)).fetchone()[0]
    assert licence == (valid_uscc(77), "许可更正后有限公司", 2)
    assert profile == (1,)
    assert history == 2


def test_a_removed_list_entry_is_no_longer_published(built: dict) -> None:
    entry_no = built["removed_entry"]["名单编号"]
    with psycopg.connect(built["url"]) as conn:
        entry = conn.execute("select is_in_force, removed_date::text from credit.credit_red_black_list"
                             " where entry_no = %s", (entry_no,)).fetchone()
        published = conn.execute("select count(*) from share.share_red_black_list_publication"
                                 " where entry_no = %s", (entry_no,)).fetchone()[0]
    assert entry == (False, "2026-11-20") and published == 0


def test_residents_are_in_the_population_under_their_keyed_hmac(built: dict) -> None:
    key = pseudonym_key().encode()
    with psycopg.connect(built["url"]) as conn:
        residents = conn.execute("select distinct on (id_number) id_number, person_name, gender"
                                 " from staging.stg_landing__household_registrations"
                                 " order by id_number, published_at desc").fetchall()
        population = {row[0]: row[1:] for row in conn.execute(
            "select person_key, person_name, gender, is_registered_resident from basic.basic_population")}
        insured = conn.execute("select count(*) from basic.basic_population where known_roles like '%参保人员%'"
                               ).fetchone()[0]
    assert residents
    for id_number, name, gender in residents:
        person_key = "demo-" + hmac.new(key, id_number.encode(), hashlib.sha256).hexdigest()
        assert population[person_key] == (name, gender, True)
    assert insured > 0


def test_published_licences_mask_the_legal_representatives_id(built: dict) -> None:
    with psycopg.connect(built["url"]) as conn:
        ids = conn.execute("select legal_rep_id_no from share.share_legal_person_license_publication"
                           " where legal_rep_id_no is not null").fetchall()
        columns = {row[0] for row in conn.execute(
            "select column_name from information_schema.columns where table_schema = 'share'"
            " and table_name = 'share_red_black_list_publication'")}
    assert ids and all(value[6:-4] == "*" * 8 for (value,) in ids)
    assert "id_number" not in columns


def test_every_relation_reads_without_the_pseudonym_key(built: dict) -> None:
    # Only dbt's sessions hold the key (huiju.transform sets PGOPTIONS, in this process too): a view
    # computing a pseudonym would fail for every other reader, e.g. the demo's summary.
    with psycopg.connect(built["url"], options="") as conn:
        assert conn.execute("select current_setting('huiju.pseudonym_ipad', true)").fetchone()[0] in (None, "")
        for relation in built["full"]:
            schema, name = relation.split(".")
            conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(schema, name))).fetchone()


def test_licence_authorities_are_in_the_legal_person_base_named_on_their_latest_decision(built: dict) -> None:
    authority_uscc = built["renamed_licence"]["许可机关统一社会信用代码"]
    with psycopg.connect(built["url"]) as conn:
        renamed = conn.execute("select legal_person_name, legal_person_type, is_authority, name_source_department,"
                               " last_seen_date::text from basic.basic_legal_person where uscc = %s",
                               (authority_uscc,)).fetchone()
        profile = conn.execute("select legal_person_name from archive.archive_legal_person_profile where uscc = %s",
                               (authority_uscc,)).fetchone()
        # every USCC that grants licences is a 机关 of the base, named as on its own latest decision
        mismatched = conn.execute(
            "select count(*), count(*) filter (where b.uscc is null or b.legal_person_type <> '机关'"
            " or b.legal_person_name <> latest.authority)"
            " from (select distinct on (authority_uscc) authority_uscc, authority from ("
            "   select authority_uscc, authority, decision_date, published_at, decision_no"
            "   from credit.credit_admin_license"
            "   union all select authority_uscc, authority, decision_date, published_at, decision_no"
            "   from credit.credit_admin_penalty) d where authority_uscc is not null"
            "   and authority_uscc in (select authority_uscc from credit.credit_admin_license)"
            "   order by authority_uscc, decision_date desc, published_at desc, decision_no desc) latest"
            " left join basic.basic_legal_person b on b.uscc = latest.authority_uscc").fetchone()
        only_licences = conn.execute(
            "select count(*) from basic.basic_legal_person where is_authority and uscc not in"
            " (select authority_uscc from credit.credit_admin_penalty where authority_uscc is not null)").fetchone()[0]
    assert renamed == (RENAMED_AUTHORITY, "机关", True, "scjgj", "2026-11-21")
    assert profile == (RENAMED_AUTHORITY,)
    assert mismatched[0] > 0 and mismatched[1] == 0
    assert only_licences > 0  # authorities known from their licences alone


def test_natural_persons_licences_and_list_entries_are_published_masked(built: dict) -> None:
    with psycopg.connect(built["url"]) as conn:
        licences = conn.execute("select s.party_name, c.party_name"
                                " from share.share_natural_person_license_publication s"
                                " join credit.credit_admin_license c using (decision_no)").fetchall()
        withdrawn = conn.execute("select count(*) from share.share_natural_person_license_publication where"
                                 " decision_no in (select decision_no from credit.credit_natural_person_license"
                                 " where not is_publishable)").fetchone()[0]
        listed = conn.execute("select subject_name, id_number"
                              " from share.share_natural_person_red_black_list_publication"
                              " where id_number like %s", (valid_id_number(5)[:6] + "%",)).fetchall()
        legal = conn.execute("select count(*) from share.share_natural_person_red_black_list_publication"
                             " where subject_type <> '自然人'").fetchone()[0]
    assert licences and all(masked == name[0] + "*" * max(len(name) - 1, 1) for masked, name in licences)
    assert withdrawn == 0
    expected_id = valid_id_number(5)[:6] + "*" * 8 + valid_id_number(5)[-4:]
    assert ("王**", expected_id) in listed
    assert legal == 0


def test_social_insurance_theme_counts_registered_residents(built: dict) -> None:
    with psycopg.connect(built["url"]) as conn:
        residents = dict(conn.execute(
            "select region_code, count(*) from (select distinct on (id_number) * from"
            " staging.stg_landing__household_registrations order by id_number, published_at desc, load_id desc,"
            " source_row_no desc) r where household_status = '正常' group by region_code").fetchall())
        coverage = {row[0]: row[1:] for row in conn.execute(
            "select region_code, registered_residents, insured_residents, working_age_residents,"
            " insured_working_age_residents, coverage_rate from thematic.thematic_social_insurance_coverage")}
        units = conn.execute("select sum(insured_persons), sum(resident_persons), sum(non_resident_persons)"
                             " from thematic.thematic_social_insurance").fetchone()
    assert residents and {code: row[0] for code, row in coverage.items() if row[0]} == residents
    assert sum(row[1] for row in coverage.values()) > 0  # residents who pay, found by ID number across bureaus
    for registered, insured, working, insured_working, rate in coverage.values():
        assert insured <= registered and insured_working <= working
        assert rate is None or rate == round(Decimal(insured_working) / working, 4)
    assert units[1] > 0 and units[0] == units[1] + units[2]



def _history(conn: psycopg.Connection, uscc: str) -> list[tuple]:
    """The legal person's versions as the snapshot view shows them, oldest first."""
    return conn.execute("select registration_status, legal_person_name, dbt_valid_from, dbt_valid_to"
                        " from archive.archive_legal_person_history where uscc = %s order by dbt_valid_from",
                        (uscc,)).fetchall()


def test_a_changed_registration_gives_two_versions_in_the_history(built: dict) -> None:
    with psycopg.connect(built["url"]) as conn:
        # a company whose 登记状态 the day-3 registration file changed (published between the day-2
        # and day-3 builds): its day-2 version ends where the day-3 version begins
        uscc, published_at = conn.execute(
            "select uscc, max(published_at) from staging.stg_landing__enterprise_registrations group by uscc"
            " having count(distinct registration_status) > 1 order by uscc limit 1").fetchone()
        old_status, new_status = (row[0] for row in conn.execute(
            "select registration_status from staging.stg_landing__enterprise_registrations where uscc = %s"
            " order by published_at", (uscc,)))
        versions = _history(conn, uscc)
        current = conn.execute("select registration_status, legal_person_name from basic.basic_legal_person"
                               " where uscc = %s", (uscc,)).fetchone()
        known_before = conn.execute(
            "select registration_status from archive.archive_legal_person_history where uscc = %s"
            " and dbt_valid_from <= %s and coalesce(dbt_valid_to, 'infinity') > %s",
            (uscc, published_at, published_at)).fetchall()
        examined, horizon = conn.execute(
            "select (select published_through from dbt_state.history_watermark"
            "        where model = 'archive_legal_person_versions'),"
            " (select max(last_published_at) from basic.basic_legal_person)").fetchone()
    (before_status, _, before_from, before_to), (after_status, after_name, after_from, after_to) = versions[-2:]
    assert (before_status, after_status) == (old_status, new_status)
    assert before_from < published_at < after_from  # recorded by the first build after its publication
    assert before_to == after_from and after_to is None
    assert (after_status, after_name) == current
    assert known_before == [(old_status,)]  # what was known when the change was published
    assert examined == horizon  # the next build compares only what is published after


def test_a_legal_person_that_leaves_the_base_has_its_version_closed(built: dict) -> None:
    gone = valid_uscc(200)  # its only penalty was corrected to another company on day 2
    with psycopg.connect(built["url"]) as conn:
        corrected_at = conn.execute("select max(published_at) from staging.stg_landing__admin_penalties"
                                    " where decision_no = %s", (MOVED,)).fetchone()[0]
        versions = _history(conn, gone)
        markers = conn.execute("select valid_from from archive.archive_legal_person_versions"
                               " where uscc = %s and is_deleted", (gone,)).fetchall()
        taken_over = _history(conn, valid_uscc(99_001))
    assert len(versions) == 1
    (_, _, valid_from, valid_to), = versions
    assert valid_from < corrected_at < valid_to
    assert markers == [(valid_to,)]
    assert len(taken_over) == 1 and taken_over[0][1] == "更正后企业有限公司" and taken_over[0][3] is None


def test_every_model_seed_and_snapshot_has_a_primary_key_test(built: dict) -> None:
    nodes = built["manifest"]["nodes"]
    keyed = {node["attached_node"] for node in nodes.values()
             if node["resource_type"] == "test" and node["test_metadata"]["name"] == "primary_key"}
    relations = {unique_id for unique_id, node in nodes.items()
                 if node["resource_type"] in ("model", "seed", "snapshot")}
    # a view of the versions table, whose key (version_id) is tested there; and the analysis layer's
    # aggregate views, whose key is their GROUP BY (unique by construction, never null: coalesced) and
    # whose test would read every fact of every month on every daily build (the social insurance coverage:
    # every 户籍 and 参保 version, as of now)
    assert relations - keyed == {"model.huiju.archive_legal_person_history", "model.huiju.analysis_credit_statistics",
                                 "model.huiju.analysis_red_black_list_movements",
                                 "model.huiju.analysis_publication_timeliness",
                                 "model.huiju.analysis_enterprise_lifecycle",
                                 "model.huiju.analysis_industry_statistics",
                                 "model.huiju.analysis_social_insurance_coverage"}


def test_the_yaml_documents_every_publication_time_that_scopes_the_daily_tests(built: dict) -> None:
    # A daily build's tests are scoped by the publication time their relation's YAML documents
    # (macros/incremental.sql): one left undocumented would make its tests check every row, every day.
    published = ("published_at", "last_published_at")
    with psycopg.connect(built["url"]) as conn:
        present = set(conn.execute("select table_name, column_name from information_schema.columns"
                                   " where table_schema = any(%s) and column_name = any(%s)",
                                   (list(LAYERS), list(published))).fetchall())
    for node in built["manifest"]["nodes"].values():
        if node["resource_type"] in ("model", "seed", "snapshot"):
            documented = {(node["alias"], name) for name in node["columns"] if name in published}
            assert documented == {pair for pair in present if pair[0] == node["alias"]}, node["name"]


def test_a_daily_build_leaves_what_it_would_not_change_as_it_is(built: dict) -> None:
    # Day 4 brought one licence correction: nothing for the penalties, the lists or 户籍, no view
    # changed; the licence's staging, credit record and history are built. Seeds and snapshots are
    # dbt's own: built every time.
    messages = built["day4"]
    for unchanged in ("model.huiju.stg_landing__admin_penalties", "model.huiju.stg_landing__credit_list_entries",
                      "model.huiju.thematic_social_insurance_coverage", "model.huiju.credit_legal_person_license",
                      "model.huiju.share_legal_person_license_publication", "model.huiju.basic_spatial_division"):
        assert messages[unchanged] == "unchanged", unchanged
    for built_again in ("model.huiju.stg_landing__admin_licenses", "model.huiju.credit_admin_license",
                        "snapshot.huiju.snap_credit_admin_license", "model.huiju.basic_legal_person",
                        "seed.huiju.code_party_type", "snapshot.huiju.snap_credit_red_black_list"):
        assert messages[built_again] != "unchanged", built_again


def test_a_view_is_built_again_when_what_it_reads_changes(built: dict, tmp_path: Path) -> None:
    url, target = built["url"], tmp_path / "target"
    view, reader = "model.huiju.credit_legal_person_license", "model.huiju.share_legal_person_license_publication"

    def build(select: str, *flags: str) -> dict[str, str]:
        run_dbt(["build", "--select", select, "--exclude-resource-type", "test", *flags], url, target_path=target)
        return _messages(target)

    assert build("credit_legal_person_license")[view] == "unchanged"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("alter table credit.credit_admin_license add column scratch integer")
    assert build("credit_legal_person_license")[view] != "unchanged"  # a column of what it reads changed
    assert build("credit_legal_person_license")[view] == "unchanged"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("alter table credit.credit_admin_license drop column scratch")
        conn.execute("drop view credit.credit_legal_person_license cascade")  # the share view goes with it
    messages = build("credit_legal_person_license+")
    assert messages[view] != "unchanged" and messages[reader] != "unchanged"
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from share.share_legal_person_license_publication").fetchone()[0] > 0
    assert build("credit_legal_person_license+")[reader] == "unchanged"
    assert build("credit_legal_person_license+", "--full-refresh")[reader] != "unchanged"


def test_the_monitoring_role_reads_the_publication_timeliness(built: dict) -> None:
    # The monitor runs as validation (migration 160); the view (the transformation's) grants it select.
    with psycopg.connect(role_url("validation", built["url"])) as conn:
        months = conn.execute("select distinct to_char(received_date, 'YYYY-MM') from"
                              " credit.credit_publication_timeliness").fetchall()
        counted = [t for (month,) in months for t in publication_timeliness(conn, month)]
    assert counted and sum(t.received for t in counted) == sum(
        1 for row in built["full"]["credit.credit_publication_timeliness"])
