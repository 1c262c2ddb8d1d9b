"""Landing and validation against a real PostgreSQL: ledger, repeats, formats, quarantine, tolerance."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import psycopg
import pytest
from huiju_demo.bulk import penalty_row, valid_id_number, write_penalty_csv

from huiju.archive import archived_path
from huiju.landing import land_file
from huiju.ledger import get_load
from huiju.registry import Registry, load_registry
from huiju.validation import publish_load, validate_load

# 11010519491231002X is GB 11643-1999's own example ID number (a published test vector, no citizen's).


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


def _raw_rows(conn: psycopg.Connection, load_id: str) -> list[tuple]:
    return conn.execute(
        "select _row_no, _source_ref, decision_no, party_name, _extra from raw.admin_penalty"
        " where _load_id = %s order by _row_no", (load_id,)).fetchall()


def test_csv_lands_once_with_ledger_archive_and_row_numbers(pg_url: str, registry: Registry, tmp_path: Path) -> None:
    source = registry.source("scjgj_penalty")
    path = write_penalty_csv(tmp_path / "处罚_20261120.csv", source, 50, tag="A")
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        assert (result.outcome, result.rows_received) == ("landed", 50)
        rows = _raw_rows(conn, result.load_id)
        assert [r[0] for r in rows] == list(range(2, 52))  # the department's own row numbers: header is row 1
        assert rows[0][1] == "处罚_20261120.csv" and rows[0][2] == "测罚〔2026〕A0号"
        load = get_load(conn, result.load_id)
        assert load is not None and load.status == "received" and load.rows_received == 50
        archive_rel = conn.execute("select archive_path from ops.loads where load_id = %s",
                                   (result.load_id,)).fetchone()[0]
        assert archived_path(archive_rel).read_bytes() == path.read_bytes()

        again = land_file(conn, registry, source, path)
        assert again.outcome == "already_landed"
        renamed = tmp_path / "重发.csv"
        renamed.write_bytes(path.read_bytes())
        repeat = land_file(conn, registry, source, renamed)
        assert (repeat.outcome, repeat.load_id) == ("repeat", result.load_id)
        assert conn.execute("select repeat_of from ops.repeats where reference = '重发.csv'").fetchone()[0] \
            == result.load_id
        assert len(_raw_rows(conn, result.load_id)) == 50


def test_an_archived_delivery_keeps_the_time_it_arrived(pg_url: str, registry: Registry, tmp_path: Path) -> None:
    source = registry.source("scjgj_penalty")
    arrived = datetime(2026, 10, 9, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    path = write_penalty_csv(tmp_path / "处罚_20261008.csv", source, 5, tag="ARCH")
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path, data_date=date(2026, 10, 8), received_at=arrived)
        assert get_load(conn, result.load_id).received_at == arrived
        assert land_file(conn, registry, source, path, received_at=None).outcome == "already_landed"
        assert get_load(conn, result.load_id).received_at == arrived  # landing again changes nothing
        now = land_file(conn, registry, source, write_penalty_csv(tmp_path / "今天.csv", source, 5, tag="NOW"))
        assert get_load(conn, now.load_id).received_at > arrived  # default: when it lands


def test_utf8_bom_csv_and_extra_columns_are_kept(pg_url: str, registry: Registry, tmp_path: Path) -> None:
    source = registry.source("swj_penalty")
    row = penalty_row(source, 1, "B") | {"备注": "补录"}
    path = tmp_path / "swj.csv"
    header = ",".join(row)
    path.write_bytes((header + "\r\n" + ",".join(row.values()) + "\r\n").encode("utf-8-sig"))
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        assert result.outcome == "landed"
        assert any("备注" in w for w in result.warnings)
        [(row_no, _, decision_no, party_name, extra)] = _raw_rows(conn, result.load_id)
        assert (row_no, decision_no, party_name) == (2, "测罚〔2026〕B1号", "测试企业1有限公司")
        assert extra == {"备注": "补录"}


def test_xlsx_with_title_row_keeps_sheet_row_numbers_and_flags_numeric_ids(
        pg_url: str, registry: Registry, tmp_path: Path) -> None:
    source = registry.source("sthjj_penalty")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    headers = list(source.columns)
    sheet.append(["生态环境局行政处罚信息报送表"])
    sheet.append(headers)
    good = penalty_row(source, 7, "C")
    sheet.append([good[h] for h in headers])
    mangled = penalty_row(source, 8, "C")
    mangled["法定代表人证件号码"] = float(mangled["法定代表人证件号码"])  # what Excel does to a number-typed cell
    sheet.append([mangled[h] for h in headers])
    path = tmp_path / "环境处罚.xlsx"
    workbook.save(path)
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        assert result.outcome == "landed"
        assert [r[0] for r in _raw_rows(conn, result.load_id)] == [3, 4]
        validation = validate_load(conn, registry, result.load_id)
        violations = conn.execute("select row_no, violations from quarantine.rows where load_id = %s",
                                  (result.load_id,)).fetchall()
        assert [(row_no, [(v["rule"], v["problem"]) for v in vs]) for row_no, vs in violations] == \
            [(4, [("id_number", "numeric")])]
        assert validation.rows_quarantined == 1


def test_missing_required_column_fails_the_load_with_a_clear_error(
        pg_url: str, registry: Registry, tmp_path: Path) -> None:
    source = registry.source("scjgj_penalty")
    path = tmp_path / "缺列.csv"
    row = penalty_row(source, 1, "D")
    del row["决定书文号"]
    path.write_text(",".join(row) + "\n" + ",".join(row.values()) + "\n", encoding="utf-8")
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        assert result.outcome == "failed"
        assert result.error is not None
        assert ("scjgj_penalty: 缺列.csv: header row 1: required column(s) missing from the header: "
                "决定书文号（行政处罚决定书文号）") in result.error
        load = get_load(conn, result.load_id)
        assert load is not None and load.status == "failed" and load.error == result.error
        assert _raw_rows(conn, result.load_id) == []


def test_a_headerless_file_does_not_echo_its_first_row(pg_url: str, registry: Registry, tmp_path: Path) -> None:
    # Without a header row, the "header" is the first data row: names, IDs and mobiles.
    source = registry.source("scjgj_penalty")
    path = write_penalty_csv(tmp_path / "无表头.csv", source, 3, tag="H", encoding="utf-8")
    lines = path.read_text(encoding="utf-8").splitlines()
    first = lines[1].split(",")
    first[1] = "张三丰 11010519491231002X 13912345678"
    path.write_text("\n".join([",".join(first), *lines[2:]]) + "\n", encoding="utf-8")
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        load = get_load(conn, result.load_id)
    assert result.outcome == "failed" and load is not None and load.error == result.error
    assert "scjgj_penalty: 无表头.csv: header row 1" in result.error and "第2列「张" in result.error
    for secret in ("三丰", "11010519491231002X", "13912345678", first[0]):
        assert secret not in result.error


def test_ragged_rows_are_quarantined_with_line_numbers_and_the_rest_lands(
        pg_url: str, registry: Registry, tmp_path: Path) -> None:
    source = registry.source("scjgj_penalty")
    path = write_penalty_csv(tmp_path / "ragged.csv", source, 5, tag="E")
    lines = path.read_bytes().decode("gb18030").splitlines()
    lines[3] = lines[3] + ",多出来的一列"  # record on row 4
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        assert (result.outcome, result.rows_received, result.rows_rejected) == ("landed", 5, 1)
        assert [r[0] for r in _raw_rows(conn, result.load_id)] == [2, 3, 5, 6]
        (row_no, reasons), = conn.execute("select row_no, reasons from quarantine.rows where load_id = %s",
                                          (result.load_id,)).fetchall()
        assert row_no == 4 and "本行有14列，表头有13列" in reasons
        validation = validate_load(conn, registry, result.load_id)
        assert (validation.rows_received, validation.rows_quarantined, validation.rows_accepted) == (5, 1, 4)


def test_a_json_record_with_text_that_cannot_be_stored_is_quarantined_and_the_rest_lands(
        pg_url: str, registry: Registry, tmp_path: Path) -> None:
    source = registry.source("scjgj_penalty").model_copy(update={"format": "json", "records_key": None})
    records = [penalty_row(source, i, "U") for i in range(4)]
    name_header = next(header for header, field in source.columns.items() if field == "party_name")
    records[2][name_header] += "\ud800"  # an unpaired surrogate: JSON carries it as an escape
    path = tmp_path / "处罚_20261120.json"
    path.write_text(json.dumps(records, ensure_ascii=True), encoding="utf-8")
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        assert (result.outcome, result.rows_received, result.rows_rejected) == ("landed", 4, 1)
        assert [r[0] for r in _raw_rows(conn, result.load_id)] == [1, 2, 4]
        (row_no, reasons, violations), = conn.execute(
            "select row_no, reasons, violations from quarantine.rows where load_id = %s", (result.load_id,)).fetchall()
        assert row_no == 3 and name_header in reasons and "\\ud800" in violations[0]["value"]
        validation = validate_load(conn, registry, result.load_id)
        assert (validation.rows_received, validation.rows_quarantined) == (4, 1)
        # A field name that cannot be stored cannot be quarantined with a record: the file is refused.
        records[2] = {**records[1], "备注\ud800": "x"}
        path.write_text(json.dumps(records, ensure_ascii=True), encoding="utf-8")
        refused = land_file(conn, registry, source, path)
        assert refused.outcome == "failed" and "\\ud800" in refused.error and path.name in refused.error


def test_every_broken_rule_is_reported_and_sensitive_values_are_masked(
        pg_url: str, registry: Registry, tmp_path: Path) -> None:
    source = registry.source("scjgj_penalty")
    valid = valid_id_number(1)  # generated from a serial, so the wrong check digit below is known
    wrong_check = valid[:-1] + ("0" if valid[-1] != "0" else "1")
    bad = {"当事人名称": "", "统一社会信用代码": "91110105MA01ABCD1Z", "法定代表人身份证号": wrong_check,
           "决定日期": "2026年2月30日", "罚款金额(万元)": "五万"}
    overrides = {3: bad, 9: {"决定书文号": "测罚〔2026〕F0号"}}
    path = write_penalty_csv(tmp_path / "bad.csv", source, 40, tag="F", overrides=overrides)
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        validation = validate_load(conn, registry, result.load_id)
        assert (validation.status, validation.rows_quarantined, validation.rows_accepted) == ("validated", 2, 38)
        rows = dict(conn.execute("select row_no, violations from quarantine.rows where load_id = %s",
                                 (result.load_id,)).fetchall())
        assert sorted(rows) == [5, 11]
        rules = {(v["field"], v["rule"]) for v in rows[5]}
        assert rules == {("party_name", "required"), ("uscc", "uscc"), ("legal_rep_id_no", "id_number"),
                         ("decision_date", "date"), ("fine_amount_wan", "number")}
        id_violation = next(v for v in rows[5] if v["field"] == "legal_rep_id_no")
        assert id_violation["value"] == wrong_check[:6] + "*" * 8 + wrong_check[-4:]
        assert id_violation["header"] == "法定代表人身份证号"
        assert "校验码" in id_violation["reason"]
        assert json.dumps(rows, ensure_ascii=False).count(wrong_check) == 0
        assert rows[11][0]["rule"] == "duplicate" and "第2行" in rows[11][0]["reason"]
        assert publish_load(conn, result.load_id)
        assert get_load(conn, result.load_id).status == "published"


def test_batch_over_tolerance_is_held_and_never_published(pg_url: str, registry: Registry, tmp_path: Path) -> None:
    source = registry.source("swj_penalty")  # tolerance 5%
    overrides = {i: {"纳税人名称": ""} for i in range(3)}
    path = write_penalty_csv(tmp_path / "held.csv", source, 20, tag="G", encoding="utf-8-sig", overrides=overrides)
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        validation = validate_load(conn, registry, result.load_id)
        assert validation.status == "held" and validation.rows_quarantined == 3
        load = get_load(conn, result.load_id)
        assert load is not None and "over the tolerance of 5%" in (load.error or "")
        assert not publish_load(conn, result.load_id)
        assert get_load(conn, result.load_id).status == "held"
        # Validating again changes nothing.
        assert validate_load(conn, registry, result.load_id).rows_quarantined == 3
        assert conn.execute("select count(*) from quarantine.rows where load_id = %s",
                            (result.load_id,)).fetchone()[0] == 3


def test_the_ledger_keeps_a_reference_masked(pg_url: str, registry: Registry, tmp_path: Path) -> None:
    # A department names its file after a person: people read ops.loads.reference (notices, portal, monitor).
    source = registry.source("scjgj_penalty")
    path = write_penalty_csv(tmp_path / "张三_11010519491231002X_处罚.csv", source, 3, tag="REFMASK")
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        assert result.outcome == "landed"
        assert get_load(conn, result.load_id).reference == "张三_110105********002X_处罚.csv"
        again = tmp_path / "李四 13912345678.csv"
        again.write_bytes(path.read_bytes())
        assert land_file(conn, registry, source, again).outcome == "repeat"
        references = [r for (r,) in conn.execute("select reference from ops.repeats where repeat_of = %s",
                                                 (result.load_id,))]
        assert references == ["李四 139****5678.csv"]
        conn.rollback()
