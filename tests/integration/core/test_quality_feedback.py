"""Issue 6 end to end against a real PostgreSQL: GX-run validation, quarantine, feedback workbooks.

A batch with known defects yields exactly the expected quarantine rows and reasons; GX
records per-expectation counts and its results hold no ID number in clear (no Data Docs are built); a
batch over tolerance publishes nothing; the feedback workbook opens, highlights the right
cells, neutralises formulas and holds no sensitive value the department did not send; a
corrected resubmission is linked to the held batch; a decision number already published by
another source is quarantined, while the same source sending it again is a correction.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import psycopg
import pytest
from huiju_demo.bulk import penalty_row, valid_id_number, write_penalty_csv
from huiju_demo.generate import org_code_check_char
from stdnum.cn import uscc as stdnum_uscc

from huiju.feedback import PROBLEM_FILL, REASON_HEADER, ROW_HEADER, ROWS_SHEET, SUMMARY_SHEET, build_feedback
from huiju.landing import land_file
from huiju.registry import Registry, load_registry
from huiju.settings import get_settings
from huiju.validation import publish_load, validate_load

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ID_NUMBER = re.compile(r"(?<![0-9A-Z])\d{17}[\dX](?![0-9A-Z])")


def make_uscc(authority: str, category: str, body: str) -> str:
    """A valid USCC with any registration authority (A, N and Y included)."""
    first17 = f"{authority}{category}110105{body}{org_code_check_char(body)}"
    return first17 + stdnum_uscc.calc_check_digit(first17)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(autouse=True)
def scratch_var(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """var/ (archive, outbox, gx) in a scratch folder, so tests never touch the demo's."""
    var = tmp_path_factory.mktemp("var")
    monkeypatch.setenv("HUIJU_VAR", str(var))
    get_settings.cache_clear()
    yield var
    get_settings.cache_clear()


def _land(conn: psycopg.Connection, registry: Registry, source_id: str, path: Path) -> str:
    result = land_file(conn, registry, registry.source(source_id), path)
    assert result.outcome == "landed", result
    return result.load_id


def test_known_defects_give_exactly_the_expected_quarantine_gx_results_and_workbook(
        pg_url: str, registry: Registry, tmp_path: Path, scratch_var: Path, capfd: pytest.CaptureFixture[str]) -> None:
    source = registry.source("scjgj_penalty")
    h = {field: header for header, field in source.columns.items()}
    good = penalty_row(source, 0, "QF")
    bad_uscc = good[h["uscc"]][:-1] + ("0" if good[h["uscc"]][-1] != "0" else "1")
    bad_id = good[h["legal_rep_id_no"]][:-1] + ("0" if good[h["legal_rep_id_no"]][-1] != "0" else "1")
    overrides = {
        0: {h["uscc"]: bad_uscc, h["legal_rep_id_no"]: bad_id},                  # row 2: two rules
        1: {h["fine_amount_wan"]: "50000"},                                      # row 3: in 元, not 万元
        2: {h["publish_until"]: "2020-01-01"},                                   # row 4: before the decision
        3: {h["penalty_type"]: "罚款;警告"},                                     # row 5: two categories, fine
        4: {h["penalty_type"]: "罚款;打板子"},                                   # row 6: one unknown category
        5: {h["decision_date"]: "3/5/2026"},                                     # row 7: ambiguous order
        7: {h["decision_no"]: "测罚〔2026〕QF6号"},                              # row 9: repeats row 8
        8: {h["uscc"]: good[h["uscc"]].translate(FULL_WIDTH)},                  # row 10: full width, normalised
        9: {h["party_name"]: '=HYPERLINK("http://example.com","点我")', h["party_type"]: "企业"},  # row 11
        10: {h["authority_uscc"]: make_uscc("A", "1", "00000001")},              # row 12: A-prefixed, valid
        11: {h["authority_uscc"]: make_uscc("N", "2", "00000002")},              # row 13: N-prefixed, valid
        12: {h["uscc"]: make_uscc("Y", "1", "00000003")},                        # row 14: Y-prefixed, valid
    }
    path = write_penalty_csv(tmp_path / "处罚_缺陷.csv", source, 100, tag="QF", overrides=overrides)
    with path.open(encoding="gb18030", newline="") as handle:
        sent = {cell for record in csv.reader(handle) for cell in record}  # every value the department sent
    with psycopg.connect(pg_url) as conn:
        load_id = _land(conn, registry, source.id, path)
        result = validate_load(conn, registry, load_id)
        assert (result.status, result.rows_quarantined, result.rows_accepted) == ("validated", 7, 93)
        assert "Calculating Metrics" not in capfd.readouterr().err  # GX's progress bars are off
        rows = dict(conn.execute("select row_no, violations from quarantine.rows where load_id = %s",
                                 (load_id,)).fetchall())
        got = {row: [(v["rule"], v.get("problem"), v["header"]) for v in violations]
               for row, violations in rows.items()}
        assert got == {
            2: [("uscc", "check", "统一社会信用代码"), ("id_number", "check", "法定代表人身份证号")],
            3: [("range", "max", "罚款金额(万元)")],
            4: [("date_order", "order", "公示截止日期")],
            6: [("enum", "enum", "处罚类别")],
            7: [("date", "ambiguous", "决定日期")],
            9: [("duplicate", "duplicate", "决定书文号")],
            11: [("enum", "enum", "当事人类别")],
        }
        reasons = dict(conn.execute("select row_no, reasons from quarantine.rows where load_id = %s",
                                    (load_id,)).fetchall())
        assert reasons[3] == "「罚款金额(万元)」数值过大（超过10000）；金额以万元为单位，请核对是否误按元填写"
        assert reasons[4] == "「公示截止日期」早于「决定日期」，日期先后顺序不对"
        assert reasons[9] == "「决定书文号」与本批次第8行重复"
        assert reasons[7].startswith("「决定日期」的年月日顺序无法确定")
        # The ID number is masked in quarantine (region and last four only).
        assert rows[2][1]["value"] == bad_id[:6] + "*" * 8 + bad_id[-4:]

        # GX: one result per expectation, counts equal to the quarantine's, no values anywhere.
        results = {(rule, field): (ok, count) for rule, field, ok, count in conn.execute(
            "select rule, field, success, unexpected_count from ops.validation_results where load_id = %s",
            (load_id,))}
        assert len(results) >= 18
        assert results[("uscc", "uscc")] == (False, 1)
        assert results[("id_number", "legal_rep_id_no")] == (False, 1)
        assert results[("enum", "penalty_type")] == (False, 1)
        assert results[("range", "fine_amount_wan")] == (False, 1)
        assert results[("duplicate", "decision_no")] == (False, 1)
        assert results[("uscc", "authority_uscc")] == (True, 0)
        assert results[("published", "decision_no")] == (True, 0)
        gx_text = "\n".join(p.read_text(encoding="utf-8", errors="replace")
                            for p in (scratch_var / "gx").rglob("*") if p.is_file() and p.suffix in (".json", ".html"))
        assert load_id in gx_text
        assert not ID_NUMBER.findall(gx_text), "an ID number reached GX's results"
        # No Data Docs: their pages load assets from public CDNs; the dashboard shows these results instead.
        docs = scratch_var / "gx" / "uncommitted" / "data_docs"  # GX makes the empty folder; nothing goes in
        assert not list((scratch_var / "gx").rglob("*.html")) and not [p for p in docs.rglob("*") if p.is_file()]

        # The feedback workbook, in the department's own terms.
        feedback = build_feedback(conn, registry, load_id)
        assert feedback is not None and feedback.rows == 7
        assert feedback.path == scratch_var / "outbox" / "scjgj_penalty" / "处罚_缺陷_问题数据反馈.xlsx"
        assert conn.execute("select rows, channel, path from ops.feedback where load_id = %s",
                            (load_id,)).fetchone() == (7, "inbox", "outbox/scjgj_penalty/处罚_缺陷_问题数据反馈.xlsx")
    workbook = openpyxl.load_workbook(feedback.path)
    assert workbook.sheetnames == [SUMMARY_SHEET, ROWS_SHEET]
    sheet = workbook[ROWS_SHEET]
    header = [c.value for c in sheet[1]]
    assert header == [ROW_HEADER, *source.columns, REASON_HEADER]
    by_row = {r[0].value: r for r in sheet.iter_rows(min_row=2)}
    assert sorted(by_row) == [2, 3, 4, 6, 7, 9, 11]

    def red(row: int) -> set[str]:
        return {header[c.column - 1] for c in by_row[row] if c.fill.fgColor.rgb == PROBLEM_FILL.fgColor.rgb}

    assert red(2) == {h["uscc"], h["legal_rep_id_no"]}
    assert red(4) == {h["publish_until"], h["decision_date"]}
    assert red(11) == {h["party_type"]}
    party_name = by_row[11][header.index(h["party_name"])].value
    assert party_name == "'" + '=HYPERLINK("http://example.com","点我")'  # shown, never evaluated
    assert by_row[2][header.index(h["legal_rep_id_no"])].value == bad_id  # the department's own value, as sent
    assert by_row[2][header.index(REASON_HEADER)].value.startswith("「统一社会信用代码」第18位校验码错误")
    everything = " ".join(str(c.value) for ws in workbook for r in ws.iter_rows() for c in r if c.value is not None)
    assert set(ID_NUMBER.findall(everything)) <= sent, "a sensitive value the department did not send"
    summary = {r[0].value: r[1].value for r in workbook[SUMMARY_SHEET].iter_rows() if r[0].value}
    assert summary["问题行数"] == 7 and summary["收到行数"] == 100 and summary["报送单位"] == "市场监督管理局"


def test_over_tolerance_is_held_publishes_nothing_and_the_correction_is_linked(
        pg_url: str, registry: Registry, tmp_path: Path) -> None:
    source = registry.source("scjgj_penalty")
    h = {field: header for header, field in source.columns.items()}
    broken = {i: {h["party_name"]: ""} for i in range(5)}
    held_path = write_penalty_csv(tmp_path / "held.csv", source, 20, tag="HT", overrides=broken)
    with psycopg.connect(pg_url) as conn:
        held = _land(conn, registry, source.id, held_path)
        result = validate_load(conn, registry, held)
        assert (result.status, result.rows_quarantined) == ("held", 5)
        assert publish_load(conn, held) is False
        assert conn.execute("select status, published_at from ops.loads where load_id = %s",
                            (held,)).fetchone() == ("held", None)
        feedback = build_feedback(conn, registry, held)
        assert feedback is not None
        summary = {r[0].value: r[1].value for r in openpyxl.load_workbook(feedback.path)[SUMMARY_SHEET].iter_rows()
                   if r[0].value}
        assert "全部数据均未公示" in summary["处理结果"]

        corrected = _land(conn, registry, source.id,
                          write_penalty_csv(tmp_path / "held_更正.csv", source, 20, tag="HT"))
        assert validate_load(conn, registry, corrected, run_gx=False).status == "validated"
        assert conn.execute("select resubmission_of from ops.loads where load_id = %s",
                            (corrected,)).fetchone()[0] == held


def test_a_key_published_by_another_source_is_quarantined_but_the_same_source_may_correct_it(
        pg_url: str, registry: Registry, tmp_path: Path) -> None:
    scjgj, swj = registry.source("scjgj_penalty"), registry.source("swj_penalty")
    with psycopg.connect(pg_url) as conn:
        first = _land(conn, registry, scjgj.id, write_penalty_csv(tmp_path / "pub.csv", scjgj, 10, tag="PB"))
        assert validate_load(conn, registry, first, run_gx=False).status == "validated"
        assert publish_load(conn, first)
        again = _land(conn, registry, scjgj.id, write_penalty_csv(tmp_path / "pub2.csv", scjgj, 10, tag="PB",
                                                                  encoding="utf-8"))
        assert validate_load(conn, registry, again, run_gx=False).rows_quarantined == 0  # a correction
        other = _land(conn, registry, swj.id, write_penalty_csv(tmp_path / "swj.csv", swj, 10, tag="PB",
                                                                encoding="utf-8"))
        result = validate_load(conn, registry, other)
        assert result.rows_quarantined == 10
        rules = {v["rule"] for (vs,) in conn.execute("select violations from quarantine.rows where load_id = %s",
                                                      (other,)) for v in vs}
        assert rules == {"published"}


def test_read_time_normalisations_are_counted_per_field_without_values(
        pg_url: str, registry: Registry, tmp_path: Path) -> None:
    source = registry.source("swj_penalty")
    h = {field: header for header, field in source.columns.items()}
    lower_uscc = make_uscc("Y", "1", "00000004").lower()
    overrides = {
        0: {h["party_name"]: "　测试企业甲有限公司 "},                  # spaces around (free text: no NFKC)
        1: {h["uscc"]: lower_uscc},                                      # lower case: upper-cased
        2: {h["decision_date"]: "2026年3月5日"},                        # Chinese date form
        3: {h["decision_date"]: "2026/3/5"},                             # slashes
        4: {h["publish_until"]: "２０２９-０３-０５"},                   # full width: NFKC, already ISO after it
    }
    path = write_penalty_csv(tmp_path / "规范化.csv", source, 10, tag="NM", encoding="utf-8", overrides=overrides)
    with psycopg.connect(pg_url) as conn:
        load_id = _land(conn, registry, source.id, path)
        assert validate_load(conn, registry, load_id, run_gx=False).rows_quarantined == 0  # all read as meant
        (normalised,) = conn.execute("select normalised from ops.validation_runs where load_id = %s",
                                     (load_id,)).fetchone()
    assert normalised == {"party_name": {"trim": 1}, "uscc": {"upper": 1},
                          "decision_date": {"date_form": 2}, "publish_until": {"nfkc": 1}}


def test_an_id_number_typed_as_a_number_in_excel_is_rejected_even_when_its_digits_look_valid(
        pg_url: str, registry: Registry, tmp_path: Path) -> None:
    from huiju_demo.bulk import write_penalty_xlsx

    source = registry.source("zjj_penalty")  # an Excel template with a title row
    path = write_penalty_xlsx(tmp_path / "zjj_penalty_numeric.xlsx", source, 5, tag="NX", title="行政处罚")
    workbook = openpyxl.load_workbook(path)
    column = list(source.columns).index(source.header_for_field["legal_rep_id_no"]) + 1
    cell = workbook.active.cell(row=3, column=column)
    cell.value = int(cell.value)  # the clerk's cell was formatted as a number: Excel keeps 15 significant digits
    workbook.save(path)
    with psycopg.connect(pg_url) as conn:
        load_id = _land(conn, registry, source.id, path)
        assert validate_load(conn, registry, load_id, run_gx=False).rows_quarantined == 1
        (violations,) = conn.execute("select violations from quarantine.rows where load_id = %s",
                                     (load_id,)).fetchone()
    assert [(v["rule"], v["problem"]) for v in violations] == [("id_number", "numeric")]
    assert "文本格式" in violations[0]["reason"]


def test_valid_id_numbers_of_the_bulk_writer_pass(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("select ops.id_number_problem(%s)", (valid_id_number(7),)).fetchone()[0] is None
