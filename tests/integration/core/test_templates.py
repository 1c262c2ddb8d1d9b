"""Departments' templates as they really come: footers below the data, and workbooks with error cells.

Workbooks are written by openpyxl (an error value assigned to a cell is stored as ``t="e"``, as
Excel stores a formula's cached error) and read by python-calamine, as production reads them.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import openpyxl
import psycopg
import pytest
from huiju_demo.bulk import penalty_row

from huiju.feedback import PROBLEM_FILL, REASON_HEADER, ROWS_SHEET, build_feedback
from huiju.landing import land_file
from huiju.ledger import get_load
from huiju.registry import Registry, Source, load_registry
from huiju.validation import validate_load

MOBILE = "13812345678"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


def _footer_lines(width: int) -> list[list[str]]:
    blank = [""] * width
    return [blank, ["填表人：王芳", "", "审核人：李强", "", f"联系电话：{MOBILE}"] + [""] * (width - 5),
            ["备注："] + [""] * (width - 1), ["1、罚款金额单位为万元"] + [""] * (width - 1),
            ["填报日期：2026年12月1日"] + [""] * (width - 1)]


def _csv(path: Path, source: Source, rows: list[list[str]], encoding: str = "gb18030") -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(list(source.columns))
    writer.writerows(rows)
    path.write_bytes(out.getvalue().encode(encoding))
    return path


def _records(source: Source, count: int, tag: str) -> list[list[str]]:
    return [list(penalty_row(source, i, tag).values()) for i in range(1, count + 1)]


def _raw_rows(conn: psycopg.Connection, load_id: str) -> list[int]:
    return [r[0] for r in conn.execute("select _row_no from raw.admin_penalty where _load_id = %s order by _row_no",
                                       (load_id,))]


def _warnings(conn: psycopg.Connection, load_id: str) -> list[str]:
    return conn.execute("select warnings from ops.loads where load_id = %s", (load_id,)).fetchone()[0]


def test_a_csv_footer_after_a_blank_row_is_left_out_and_recorded(pg_url: str, registry: Registry,
                                                                  tmp_path: Path) -> None:
    source = registry.source("scjgj_penalty")
    width = len(source.columns)
    path = _csv(tmp_path / "处罚_表尾.csv", source, _records(source, 3, "FT") + _footer_lines(width))
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        assert (result.outcome, result.rows_received, result.rows_rejected) == ("landed", 3, 0)
        assert _raw_rows(conn, result.load_id) == [2, 3, 4]
        [warning] = [w for w in _warnings(conn, result.load_id) if "footer" in w]
        assert "rows 5-9" in warning and "填表人：王芳" in warning and "1、罚款金额单位为万元" in warning
        assert MOBILE not in warning and "138****5678" in warning  # the ledger masks like everything a person reads
        validation = validate_load(conn, registry, result.load_id, run_gx=False)
        assert (validation.rows_received, validation.rows_quarantined) == (3, 0)
        assert build_feedback(conn, registry, result.load_id) is None  # nothing goes back: the footer is no problem


def test_a_csv_footer_is_cut_on_the_row_by_row_path_too(pg_url: str, registry: Registry, tmp_path: Path) -> None:
    source = registry.source("scjgj_penalty")
    records = _records(source, 3, "FR")
    records[1] = [*records[1], "多余"]  # a ragged line: the file lands row by row
    path = _csv(tmp_path / "处罚_表尾_逐行.csv", source, records + _footer_lines(len(source.columns))[1:])
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        assert (result.rows_received, result.rows_rejected) == (3, 1)
        assert _raw_rows(conn, result.load_id) == [2, 4]
        [warning] = [w for w in _warnings(conn, result.load_id) if "footer" in w]
        assert "rows 5-8" in warning


def test_a_label_inside_the_data_is_data_and_the_rule_is_configurable(pg_url: str, registry: Registry,
                                                                      tmp_path: Path) -> None:
    source = registry.source("scjgj_penalty")
    width = len(source.columns)
    records = _records(source, 3, "FL")
    records.insert(1, ["备注：此行不是表尾"] + [""] * (width - 1))  # a record follows it: it is a (bad) record
    custom = source.model_copy(update={"footer": source.footer.model_copy(update={"extra_labels": ("经办人",)})})
    path = _csv(tmp_path / "处罚_中间.csv", source, [*records, ["经办人：赵六"] + [""] * (width - 1)])
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, custom, path)
        assert result.rows_received == 4 and _raw_rows(conn, result.load_id) == [2, 3, 4, 5]
        assert any("rows 6-6" in w and "经办人：赵六" in w for w in _warnings(conn, result.load_id))
        off = source.model_copy(update={"footer": source.footer.model_copy(update={"enabled": False})})
        other = _csv(tmp_path / "处罚_不识别.csv", source, _records(source, 2, "FO") + _footer_lines(width))
        landed = land_file(conn, registry, off, other)
        assert landed.rows_received == 7  # footer recognition off: every line is a row, as before


def _workbook(source: Source, rows: list[list[object]],
              title: str = "生态环境局行政处罚信息报送表") -> openpyxl.Workbook:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "数据"
    sheet.append([title])
    sheet.append(list(source.columns))
    for row in rows:
        sheet.append(row)
    return workbook


def test_an_xlsx_footer_is_left_out_and_recorded(pg_url: str, registry: Registry, tmp_path: Path) -> None:
    source = registry.source("sthjj_penalty")
    width = len(source.columns)
    workbook = _workbook(source, [*_records(source, 4, "XF"), *_footer_lines(width)])
    path = tmp_path / "环境处罚_表尾.xlsx"
    workbook.save(path)
    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        assert (result.outcome, result.rows_received) == ("landed", 4)
        assert _raw_rows(conn, result.load_id) == [3, 4, 5, 6]
        [warning] = [w for w in _warnings(conn, result.load_id) if "footer" in w]
        assert "rows 8-11" in warning and "审核人：李强" in warning  # row 7 is blank: the sheet skips it
        assert validate_load(conn, registry, result.load_id, run_gx=False).rows_quarantined == 0


def _with_cached_formula_error(path: Path, cell: str, formula: str, value: str) -> None:
    """Rewrite ``cell`` as Excel saves a formula whose result is an error: ``<f>`` and the cached ``<v>``."""
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    start = sheet.index(f'<c r="{cell}"')
    end = sheet.index("</c>", start) + 4
    sheet = sheet[:start] + f'<c r="{cell}" t="e"><f>{formula}</f><v>{value}</v></c>' + sheet[end:]
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)


def test_error_cells_are_quarantined_naming_the_cell(pg_url: str, registry: Registry, tmp_path: Path) -> None:
    source = registry.source("sthjj_penalty")
    headers = list(source.columns)
    column = {h: openpyxl.utils.get_column_letter(i + 1) for i, h in enumerate(headers)}
    rows: list[list[object]] = _records(source, 5, "XE")
    rows[0][headers.index("处罚决定日期")] = "#N/A"  # an error value: openpyxl stores it as t="e"
    rows[1][headers.index("罚款金额（万元）")] = "#DIV/0!"
    rows[1][headers.index("行政相对人名称")] = "#REF!"
    rows[2][headers.index("处罚内容")] = 0  # replaced below by a formula with a cached #VALUE!
    for code in ("#NAME?", "#NUM!", "#NULL!"):
        rows.append([*_records(source, 1, "XE" + code[1:3])[0]])
        rows[-1][headers.index("处罚机关")] = code
    rows.append(["#N/A", None, "#N/A"] + [None] * (len(headers) - 3))  # a lookup formula filled down past the data
    rows[4] = [*rows[4], "#N/A"]  # an error in a column nobody configured
    workbook = _workbook(source, rows)
    workbook.active.cell(row=2, column=len(headers) + 1, value="内部备查")
    path = tmp_path / "环境处罚_错误值.xlsx"
    workbook.save(path)
    _with_cached_formula_error(path, f"{column['处罚内容']}5", "A5*1", "#VALUE!")

    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        assert (result.outcome, result.rows_received) == ("landed", 8)
        raw = dict(conn.execute("select _row_no, decision_date from raw.admin_penalty where _load_id = %s",
                                (result.load_id,)).fetchall())
        assert raw[3] == "#N/A"  # raw keeps what the department's sheet shows, never an empty cell
        quarantined = dict(conn.execute("select row_no, violations from quarantine.rows where load_id = %s",
                                        (result.load_id,)).fetchall())
        cells = {row_no: sorted((v["cell"], v["value"]) for v in vs) for row_no, vs in quarantined.items()}
        assert cells == {
            3: [(f"数据!{column['处罚决定日期']}3", "#N/A")],
            4: sorted([(f"数据!{column['罚款金额（万元）']}4", "#DIV/0!"),
                       (f"数据!{column['行政相对人名称']}4", "#REF!")]),
            5: [(f"数据!{column['处罚内容']}5", "#VALUE!")],
            8: [(f"数据!{column['处罚机关']}8", "#NAME?")],
            9: [(f"数据!{column['处罚机关']}9", "#NUM!")],
            10: [(f"数据!{column['处罚机关']}10", "#NULL!")],
        }
        reason = quarantined[3][0]["reason"]
        assert f"数据!{column['处罚决定日期']}3" in reason and "#N/A" in reason and "处罚决定日期" in reason
        warnings = _warnings(conn, result.load_id)
        assert any("only formula error values" in w and "rows 11" in w for w in warnings), warnings
        extra = openpyxl.utils.get_column_letter(len(headers) + 1)
        assert any("not in the configuration" in w and f"数据!{extra}7" in w for w in warnings), warnings

        validate_load(conn, registry, result.load_id, run_gx=False)
        after = dict(conn.execute("select row_no, violations from quarantine.rows where load_id = %s",
                                  (result.load_id,)).fetchall())
        # Validation adds the rules' verdicts to the cell's: #N/A is no date either.
        assert after[3][0]["rule"] == "cell_error" and len(after[3]) == 2, after[3]
        assert len(after) == 6
        feedback = build_feedback(conn, registry, result.load_id)
        load = get_load(conn, result.load_id)
        assert load is not None and load.rows_quarantined == 6
    assert feedback is not None and feedback.rows == 6
    sheet = openpyxl.load_workbook(feedback.path)[ROWS_SHEET]
    header = [c.value for c in sheet[1]]
    first = [c for c in sheet[2]]
    assert first[0].value == 3
    date_cell = first[header.index("处罚决定日期")]
    assert date_cell.value == "#N/A" and date_cell.fill.start_color.rgb == PROBLEM_FILL.start_color.rgb
    assert f"数据!{column['处罚决定日期']}3" in first[header.index(REASON_HEADER)].value
    json.dumps(after)  # stored as JSON, as every violation
