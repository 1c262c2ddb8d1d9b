"""Records a department deletes at its front-end database (snapshot mode) leave the warehouse through the dbt build.

A front-end table of penalties (a fresh PostgreSQL database) is read in snapshot mode and built;
two of its records are then deleted at the source, the next snapshot finds them gone
(``ops.deletions``) and withdraws their raw rows (``ops.withdrawals``), and the next incremental
build takes them out of staging, the credit records, the publication views and the analysis facts, and
lists them in ``share.share_withdrawals`` for the push targets — as a full refresh does. The same for 红黑名单 entries:
out of staging, the credit database's list and both publications (法人, 自然人), and listed by 名单编号. And for
the registrations behind 法人基础信息 (企业登记): out of staging, and the legal person recomputed without them in the
basic layer, the legal-person archive, credit and share — gone where nothing else names it, unregistered where its
tax registration still does — and listed by 统一社会信用代码.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
from huiju_demo.bulk import penalty_row, valid_id_number, valid_uscc
from psycopg import sql

from huiju import warehouse
from huiju.channels import CollectContext, ConnectionInfo
from huiju.channels import frontdb as channel
from huiju.ledger import loads_with_status, set_status
from huiju.registry import Registry, load_registry
from huiju.transform import run_dbt
from huiju.validation import publish_load
from huiju.warehouse import role_url

ROOT = Path(__file__).resolve().parents[2]
FIELDS = ("party_name", "party_type", "uscc", "legal_rep", "legal_rep_id_no", "decision_no", "penalty_type",
          "penalty_content", "fine_amount_wan", "decision_date", "publish_until", "authority", "authority_uscc")
WITHDRAWN = ("测罚〔2026〕W2号", "测罚〔2026〕W5号")


LIST_FIELDS = ("entry_no", "list_kind", "list_name", "subject_name", "subject_type", "uscc", "legal_rep", "id_number",
               "reason", "listed_date", "valid_until", "removed_date", "listing_authority")
WITHDRAWN_ENTRIES = ("测黑〔2026〕2号", "测黑〔2026〕5号")
REGISTRATION_FIELDS = ("uscc", "enterprise_name", "enterprise_type", "legal_rep", "legal_rep_id_no",
                       "registered_capital_wan", "established_date", "status", "closed_date", "address", "region_code",
                       "authority", "industry_code")
TAX_FIELDS = ("uscc", "taxpayer_name", "taxpayer_kind", "legal_rep", "legal_rep_id_no", "registration_date",
              "tax_status", "credit_rating", "contact_mobile", "tax_authority")
#: The snapshot sources of the test department: dataset, front-end table, its columns (named as the fields), key.
SOURCES = {"snap_penalty": ("admin_penalty", "penalties", FIELDS, "decision_no"),
           "snap_list": ("credit_list", "list_entries", LIST_FIELDS, "entry_no"),
           "snap_registration": ("enterprise_registration", "registrations", REGISTRATION_FIELDS, "uscc"),
           "snap_tax": ("tax_registration", "tax_registrations", TAX_FIELDS, "uscc")}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """A department whose penalties and list entries are read from its front-end tables in snapshot mode."""
    config = tmp_path_factory.mktemp("cfg") / "config"
    shutil.copytree(ROOT / "config" / "datasets", config / "datasets")
    (config / "departments").mkdir()
    sources = [{"id": source_id, "title": f"前置库{table}", "dataset": dataset, "channel": "frontdb",
                "connection": "huiju_snap", "columns": {name: name for name in fields},
                "frontdb": {"dialect": "postgresql", "table": table, "tls": {"enabled": False},
                            "mode": "snapshot", "key_columns": [key], "batch_size": 4}}
               for source_id, (dataset, table, fields, key) in SOURCES.items()]
    department = {"department": {"code": "csj", "name": "测试局", "contacts": [
        {"name": "测试", "role": "数据专员", "email": "t@example.gov.cn", "phone": "13800000000"}]},
        "sources": sources}
    (config / "departments" / "csj.yaml").write_text(json.dumps(department, ensure_ascii=False), encoding="utf-8")
    return load_registry(config)


def _front_table(front: str, source_id: str, rows: list[dict]) -> None:
    """The department's front-end table of ``source_id``, text columns named as the fields, holding ``rows``."""
    _, table, fields, _ = SOURCES[source_id]
    with psycopg.connect(front) as conn:
        conn.execute(sql.SQL("create table {} ({})").format(sql.Identifier(table), sql.SQL(", ").join(
            sql.SQL("{} text").format(sql.Identifier(name)) for name in fields)))
        with conn.cursor() as cur:
            cur.executemany(sql.SQL("insert into {} ({}) values ({})").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, fields)),
                sql.SQL(", ").join(sql.Placeholder() * len(fields))), [[row[name] for name in fields] for row in rows])


def _collect_and_publish(url: str, front: str, registry: Registry, source_id: str = "snap_penalty") -> None:
    """One snapshot run, then its new batches marked validated and published (dbt reads published batches)."""
    params = warehouse.libpq_params(front)
    info = ConnectionInfo(conn_id="huiju_snap", host=params["host"], port=int(params["port"]), login=params["user"],
                          password=params["password"], schema=params["dbname"])
    with psycopg.connect(role_url("landing", url)) as conn:
        channel.collect(CollectContext(registry=registry, source=registry.source(source_id), conn=conn,
                                       connection=info))
    with psycopg.connect(role_url("validation", url)) as conn:
        for load_id in loads_with_status(conn, source_id, "received"):
            with conn.transaction():
                received = conn.execute("select rows_received from ops.loads where load_id = %s",
                                        (load_id,)).fetchone()[0]
                set_status(conn, load_id, "validated", rows_accepted=received, rows_quarantined=0)
            assert publish_load(conn, load_id)


def _decisions(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as conn:
        return {relation: {row[0] for row in conn.execute(sql.SQL("select decision_no from {}").format(
                    sql.Identifier(*relation.split("."))))}
                for relation in ("staging.stg_landing__admin_penalties", "credit.credit_admin_penalty",
                                 "credit.credit_legal_person_penalty",
                                 "share.share_legal_person_penalty_publication", "analysis.analysis_penalty_facts")}


def test_records_deleted_at_the_source_leave_staging_credit_and_share(make_database, registry: Registry,
                                                                     tmp_path: Path) -> None:
    url = make_database("withdraw")
    warehouse.migrate(url)
    front = make_database("withdraw_front")
    scjgj = load_registry().source("scjgj_penalty")
    rows = [{scjgj.columns[header]: value for header, value in penalty_row(scjgj, i, "W").items()}
            for i in range(1, 9)]
    _front_table(front, "snap_penalty", rows)
    target = tmp_path / "target"
    _collect_and_publish(url, front, registry)
    run_dbt(["build"], url, target_path=target)
    every = {row["decision_no"] for row in rows}
    before = _decisions(url)
    assert all(decisions == every for decisions in before.values()), before

    with psycopg.connect(front) as conn:
        conn.execute("delete from penalties where decision_no = any(%s)", (list(WITHDRAWN),))
    _collect_and_publish(url, front, registry)
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from ops.deletions").fetchone()[0] == 2
        withdrawn = conn.execute("select natural_key ->> 'decision_no', source_key from ops.withdrawals"
                                 " order by 1").fetchall()
    assert [(no, key) for no, key in withdrawn] == [(no, [no]) for no in WITHDRAWN]  # every landed row of them

    run_dbt(["build"], url, target_path=target)
    incremental = _decisions(url)
    assert all(decisions == every - set(WITHDRAWN) for decisions in incremental.values()), incremental
    with psycopg.connect(role_url("share", url)) as conn:  # what a push module reads, as the share reader
        listed = conn.execute("select dataset, decision_no, record_key, source_id from share.share_withdrawals"
                              " order by decision_no").fetchall()
    assert listed == [("admin_penalty", no, no, "snap_penalty") for no in WITHDRAWN]

    run_dbt(["build", "--full-refresh"], url, target_path=target)
    assert _decisions(url) == incremental


def _entries(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as conn:
        return {relation: {row[0] for row in conn.execute(sql.SQL("select entry_no from {}").format(
                    sql.Identifier(*relation.split("."))))}
                for relation in ("staging.stg_landing__credit_list_entries", "credit.credit_red_black_list",
                                 "share.share_red_black_list_publication",
                                 "share.share_natural_person_red_black_list_publication")}


def test_list_entries_deleted_at_the_source_leave_the_lists_and_are_listed_for_the_share_readers(
        make_database, registry: Registry, tmp_path: Path) -> None:
    url = make_database("withdraw_list", migrated=True)
    front = make_database("withdraw_list_front")
    rows = [{"entry_no": f"测黑〔2026〕{i}号", "list_kind": "黑名单", "list_name": "严重违法失信名单",
             "subject_name": f"测试主体{i}", "subject_type": "自然人" if i % 2 else "法人及非法人组织",
             "uscc": None, "legal_rep": None, "id_number": None, "reason": "测试事由", "listed_date": "2026-01-05",
             "valid_until": "2099-12-31", "removed_date": None, "listing_authority": "测试局"} for i in range(1, 7)]
    _front_table(front, "snap_list", rows)
    target = tmp_path / "target"
    build = ["build", "--select", "+share_red_black_list_publication",
             "+share_natural_person_red_black_list_publication", "+share_withdrawals",
             "--exclude-resource-type", "unit_test"]
    _collect_and_publish(url, front, registry, "snap_list")
    run_dbt(build, url, target_path=target)
    before = _entries(url)
    every = {row["entry_no"] for row in rows}
    assert before["staging.stg_landing__credit_list_entries"] == before["credit.credit_red_black_list"] == every
    assert before["share.share_red_black_list_publication"] | before[
        "share.share_natural_person_red_black_list_publication"] == every

    with psycopg.connect(front) as conn:
        conn.execute("delete from list_entries where entry_no = any(%s)", (list(WITHDRAWN_ENTRIES),))
    _collect_and_publish(url, front, registry, "snap_list")
    run_dbt(build, url, target_path=target)
    after = _entries(url)
    assert not any(entries & set(WITHDRAWN_ENTRIES) for entries in after.values()), after
    assert after["credit.credit_red_black_list"] == every - set(WITHDRAWN_ENTRIES)
    with psycopg.connect(role_url("share", url)) as conn:  # as the share reader
        listed = conn.execute("select dataset, key_field, record_key, decision_no, source_id"
                              " from share.share_withdrawals order by record_key").fetchall()
    assert listed == [("credit_list", "entry_no", no, None, "snap_list") for no in WITHDRAWN_ENTRIES]


#: What a legal person's registration reaches: compared between the incremental build and a full refresh.
LEGAL_PERSON_RELATIONS = ("staging.stg_landing__enterprise_registrations", "basic.basic_legal_person",
                          "basic.basic_population", "archive.archive_legal_person_profile",
                          "thematic.thematic_enterprise_lifecycle", "credit.credit_legal_person_credit",
                          "share.share_legal_person")


def _legal_persons(url: str) -> dict[str, list[tuple]]:
    """Every row of LEGAL_PERSON_RELATIONS, as sorted text."""
    with psycopg.connect(url) as conn:
        return {relation: sorted(tuple(str(value) for value in row) for row in conn.execute(
                    sql.SQL("select * from {}").format(sql.Identifier(*relation.split(".")))))
                for relation in LEGAL_PERSON_RELATIONS}


def _registered(url: str) -> dict[str, dict[str, tuple]]:
    """Per relation, its legal persons by USCC: (name, registered, registration status) where the relation has them."""
    with psycopg.connect(url) as conn:
        return {
            "staging": {row[0]: row[1:] for row in conn.execute(
                "select uscc, enterprise_name, true, registration_status"
                " from staging.stg_landing__enterprise_registrations")},
            "basic": {row[0]: row[1:] for row in conn.execute(
                "select uscc, legal_person_name, is_registered, registration_status from basic.basic_legal_person")},
            "credit": {row[0]: row[1:] for row in conn.execute(
                "select uscc, legal_person_name, true, null from credit.credit_legal_person_credit")},
            "share": {row[0]: row[1:] for row in conn.execute(
                "select uscc, legal_person_name, true, null from share.share_legal_person")},
        }


def test_registrations_deleted_at_the_source_leave_the_legal_person_layers_as_a_full_refresh_does(
        make_database, registry: Registry, tmp_path: Path) -> None:
    url = make_database("withdraw_registration", migrated=True)
    front = make_database("withdraw_registration_front")
    usccs = [valid_uscc(700 + i) for i in range(1, 7)]
    registrations = [{"uscc": uscc, "enterprise_name": f"测试登记企业{i}有限公司", "enterprise_type": "有限责任公司",
                      "legal_rep": f"法人{i}", "legal_rep_id_no": valid_id_number(700 + i),
                      "registered_capital_wan": "100", "established_date": "2020-01-01", "status": "存续",
                      "closed_date": None, "address": "测试路1号", "region_code": "110105", "authority": "测试局",
                      "industry_code": "I65"} for i, uscc in enumerate(usccs, start=1)]
    # The second enterprise is also a taxpayer: it stays a legal person, known to the tax register alone.
    taxpayer = {"uscc": usccs[1], "taxpayer_name": "测试纳税企业2有限公司", "taxpayer_kind": "一般纳税人",
                "legal_rep": "法人2", "legal_rep_id_no": valid_id_number(702), "registration_date": "2020-02-01",
                "tax_status": "正常", "credit_rating": "A", "contact_mobile": None, "tax_authority": "测试税务局"}
    _front_table(front, "snap_registration", registrations)
    _front_table(front, "snap_tax", [taxpayer])
    target = tmp_path / "target"
    build = ["build", "--select", *(f"+{relation.split('.')[1]}" for relation in LEGAL_PERSON_RELATIONS),
             "+share_withdrawals", "--indirect-selection", "cautious", "--exclude-resource-type", "unit_test"]
    _collect_and_publish(url, front, registry, "snap_registration")
    _collect_and_publish(url, front, registry, "snap_tax")
    run_dbt(build, url, target_path=target)
    before = _registered(url)
    assert all(set(before[layer]) == set(usccs) for layer in before), before
    assert before["basic"][usccs[1]] == ("测试登记企业2有限公司", True, "存续")  # the register ranks first

    gone, unregistered = usccs[0], usccs[1]
    with psycopg.connect(front) as conn:
        conn.execute("delete from registrations where uscc = any(%s)", ([gone, unregistered],))
    _collect_and_publish(url, front, registry, "snap_registration")
    run_dbt(build, url, target_path=target)
    after = _registered(url)
    assert not {gone, unregistered} & set(after["staging"])
    for layer in ("basic", "credit", "share"):
        assert set(after[layer]) == set(usccs) - {gone}, (layer, after[layer])
    # Named as the tax register names it now, and no longer registered.
    assert after["basic"][unregistered] == ("测试纳税企业2有限公司", False, None)
    assert after["share"][unregistered][0] == "测试纳税企业2有限公司"
    with psycopg.connect(role_url("share", url)) as conn:  # what a push module reads, as the share reader
        listed = conn.execute("select dataset, key_field, record_key, decision_no, source_id"
                              " from share.share_withdrawals order by record_key").fetchall()
    assert listed == sorted([("enterprise_registration", "uscc", uscc, None, "snap_registration")
                             for uscc in (gone, unregistered)], key=lambda row: row[2])

    incremental = _legal_persons(url)
    run_dbt([*build, "--full-refresh"], url, target_path=target)
    assert _legal_persons(url) == incremental
