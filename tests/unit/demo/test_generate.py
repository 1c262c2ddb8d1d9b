"""The demo departments' submissions: deterministic files whose bad rows are exactly the manifest's.

The files are read back the way a department's file would be (csv with its encoding,
the workbook with python-calamine) and every row is checked against the six rules with
stdnum's arithmetic, independently of the generator, so a "good" row that would in fact
be quarantined, or a bad row in the wrong place, fails here.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest
import python_calamine
from huiju_demo.generate import RULES, DemoManifest, generate_submissions, org_code_check_char
from stdnum.cn import ric, uscc

from huiju.registry import Registry, Source, load_registry

DAY = date(2026, 11, 20)
ROWS = 200
# How each department writes a date in its CSV (the workbook has real date cells).
CSV_DATE_FORMATS = {"scjgj_penalty": "%Y-%m-%d", "swj_penalty": "%Y/%m/%d"}
CSV_ENCODINGS = {"scjgj_penalty": "gb18030", "swj_penalty": "utf-8-sig"}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="module")
def generated(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoManifest]:
    inbox = tmp_path_factory.mktemp("inbox")
    return inbox, generate_submissions(registry, inbox, DAY, rows_per_source=ROWS)


def _read_rows(source: Source, path: Path) -> list[list[Any]]:
    """All rows of the file, as the department's spreadsheet shows them (index 0 = row 1)."""
    if source.format == "xlsx":
        sheet = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
        return sheet.to_python(skip_empty_area=False)
    text = path.read_bytes().decode(CSV_ENCODINGS[source.id])
    return list(csv.reader(io.StringIO(text, newline="")))


def _breaks(source: Source, registry: Registry, record: dict[str, Any]) -> set[tuple[str, str]]:
    """The (field, rule) pairs a record breaks, checked from the dataset's declared rules."""
    dataset = registry.dataset_of(source)
    broken = set()
    for field in dataset.fields:
        value = record.get(field.name)
        blank = value is None or (isinstance(value, str) and not value.strip())
        if blank:
            if field.required:
                broken.add((field.name, "required"))
            continue
        if field.enum is not None and value not in field.enum:
            broken.add((field.name, "enum"))
        if "uscc" in field.rules and not uscc.is_valid(value):
            broken.add((field.name, "uscc"))
        if "id_number" in field.rules and not ric.is_valid(value):
            broken.add((field.name, "id_number"))
        if field.type == "date" and not isinstance(value, date):
            try:
                datetime.strptime(value, CSV_DATE_FORMATS.get(source.id, "%Y-%m-%d"))
            except (TypeError, ValueError):
                broken.add((field.name, "date"))
        if field.type == "number" and not isinstance(value, int | float):
            try:
                Decimal(value)
            except InvalidOperation:
                broken.add((field.name, "number"))
    return broken


def test_every_inbox_source_gets_one_file_named_by_day(registry: Registry, generated) -> None:
    inbox, manifest = generated
    inbox_sources = sorted(s.id for s in registry.sources.values() if s.channel == "inbox")
    assert [sub.source_id for sub in manifest.submissions] == inbox_sources
    for sub in manifest.submissions:
        source = registry.source(sub.source_id)
        assert sub.path == inbox / source.id / f"{source.id}_20261120.{source.format}"
        assert sub.path.is_file()
        assert sub.rows_written == ROWS


def _penalty_submissions(registry: Registry, manifest: DemoManifest) -> list:
    return [sub for sub in manifest.submissions if registry.source(sub.source_id).dataset == "admin_penalty"]


def test_bad_rows_are_exactly_where_the_manifest_says(registry: Registry, generated) -> None:
    _, manifest = generated
    seen_rules: set[str] = set()
    for sub in _penalty_submissions(registry, manifest):
        source = registry.source(sub.source_id)
        rows = _read_rows(source, sub.path)
        header = rows[source.header_row - 1]
        assert header == list(source.columns)
        data = rows[source.header_row:]
        assert len(data) == ROWS
        assert sub.first_data_row == source.header_row + 1

        found = {}
        for offset, values in enumerate(data):
            record = {source.columns[h]: v for h, v in zip(header, values, strict=True)}
            broken = _breaks(source, registry, record)
            if broken:
                found[sub.first_data_row + offset] = broken

        expected = {bad.row: set(bad.defects) for bad in sub.bad_rows}
        assert found == expected
        assert sub.expected_quarantined == len(sub.bad_rows) == round(ROWS * 0.04)
        assert sub.expected_quarantined / ROWS < source.tolerance
        assert all(len(bad.defects) == 1 for bad in sub.bad_rows)
        # The manifest's decision numbers point at the same rows.
        col = header.index(source.header_for_field["decision_no"])
        for bad in sub.bad_rows:
            assert rows[bad.row - 1][col] == bad.decision_no
        decision_nos = [values[col] for values in data]
        assert len(set(decision_nos)) == ROWS
        seen_rules |= {rule for bad in sub.bad_rows for _, rule in bad.defects}
    assert seen_rules == set(RULES)


def test_good_codes_check_out_with_the_standards_arithmetic(registry: Registry, generated) -> None:
    _, manifest = generated
    checked = 0
    for sub in _penalty_submissions(registry, manifest):
        source = registry.source(sub.source_id)
        rows = _read_rows(source, sub.path)
        header, data = rows[source.header_row - 1], rows[source.header_row:]
        bad = {b.row for b in sub.bad_rows}
        for offset, values in enumerate(data):
            if sub.first_data_row + offset in bad:
                continue
            record = {source.columns[h]: v for h, v in zip(header, values, strict=True)}
            for field in ("uscc", "authority_uscc"):
                code = record[field]
                if not code:
                    assert field == "uscc" and record["party_type"] == "自然人"
                    continue
                assert isinstance(code, str) and len(code) == 18
                assert code[-1] == uscc.calc_check_digit(code[:17])
                assert code[16] == org_code_check_char(code[8:16])  # GB 11714 inside GB 32100
            assert record["authority_uscc"][:2] == "11"  # 机构编制 + 机关
            id_no = record["legal_rep_id_no"]
            if id_no:
                assert ric.is_valid(id_no)
                assert date(1950, 1, 1) <= ric.get_birth_date(id_no) <= date(2000, 12, 31)
                checked += 1
    assert checked > ROWS  # most rows have a legal representative


def test_org_code_check_char_matches_published_examples() -> None:
    assert org_code_check_char("D2143569") == "X"
    assert org_code_check_char("60003734") == "1"  # inside the USCC 91110000600037341L


def test_same_seed_and_day_give_identical_files_and_manifest(registry: Registry, tmp_path: Path) -> None:
    first = generate_submissions(registry, tmp_path, DAY, rows_per_source=50)
    first_bytes = {sub.source_id: sub.path.read_bytes() for sub in first.submissions}
    second = generate_submissions(registry, tmp_path, DAY, rows_per_source=50)
    assert second.to_dict() == first.to_dict()
    for sub in second.submissions:
        # CSVs by contract; the workbook too, since its timestamps are pinned.
        assert sub.path.read_bytes() == first_bytes[sub.source_id], sub.source_id

    other_day = generate_submissions(registry, tmp_path / "other", date(2026, 11, 21), rows_per_source=50)
    assert other_day.submission("swj_penalty").path.read_bytes() != first_bytes["swj_penalty"]


def test_workbook_has_title_row_then_header_and_typed_cells(registry: Registry, generated) -> None:
    _, manifest = generated
    sub = manifest.submission("sthjj_penalty")
    source = registry.source("sthjj_penalty")
    sheet = python_calamine.CalamineWorkbook.from_path(str(sub.path)).get_sheet_by_index(0)
    rows = sheet.to_python(skip_empty_area=False)
    assert "行政处罚" in rows[0][0] and all(v == "" for v in rows[0][1:])
    assert rows[1] == list(source.columns)
    assert sheet.merged_cell_ranges == [((0, 0), (0, len(source.columns) - 1))]

    col = {source.columns[h]: i for i, h in enumerate(rows[1])}
    bad = {b.row: {f for f, _ in b.defects} for b in sub.bad_rows}
    fines = 0
    for number, values in enumerate(rows[2:], start=3):
        for field in ("uscc", "legal_rep_id_no", "authority_uscc"):
            assert isinstance(values[col[field]], str)  # text, never a number losing digits
        if "decision_date" not in bad.get(number, ()):
            assert isinstance(values[col["decision_date"]], date)
        assert isinstance(values[col["publish_until"]], date)
        fine = values[col["fine_amount_wan"]]
        if fine != "" and "fine_amount_wan" not in bad.get(number, ()):
            assert isinstance(fine, float) and 0.05 <= fine <= 50
            fines += 1
    assert fines > 0


def test_csv_encodings_and_line_endings(generated) -> None:
    _, manifest = generated
    gbk = manifest.submission("scjgj_penalty").path.read_bytes()
    gbk.decode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        gbk.decode("utf-8")
    assert gbk.count(b"\r\n") == ROWS + 1 and gbk.count(b"\n") == ROWS + 1

    bom = manifest.submission("swj_penalty").path.read_bytes()
    assert bom.startswith(b"\xef\xbb\xbf")
    text = bom.decode("utf-8-sig")
    assert text.count("\r\n") == ROWS + 1
    first_date = next(csv.reader(io.StringIO(text.splitlines()[1])))[9]
    assert "/" in first_date and "-" not in first_date  # the tax bureau's YYYY/M/D


def test_dates_are_recent_and_publication_runs_three_years(registry: Registry, generated) -> None:
    _, manifest = generated
    sub = manifest.submission("scjgj_penalty")
    source = registry.source("scjgj_penalty")
    rows = _read_rows(source, sub.path)
    col = {source.columns[h]: i for i, h in enumerate(rows[0])}
    bad = {b.row for b in sub.bad_rows}
    for number, values in enumerate(rows[1:], start=2):
        if number in bad:
            continue
        decided = date.fromisoformat(values[col["decision_date"]])
        until = date.fromisoformat(values[col["publish_until"]])
        assert 1 <= (DAY - decided).days <= 60
        assert (until.year - decided.year, until.month) == (3, decided.month)


def test_manifest_is_json_serialisable(generated) -> None:
    _, manifest = generated
    data = json.loads(json.dumps(manifest.to_dict(), ensure_ascii=False))
    assert data["day"] == "2026-11-20"
    sub = data["sources"]["sthjj_penalty"]
    assert sub["first_data_row"] == 3
    assert sub["expected_quarantined"] == len(sub["bad_rows"]) == 8
    assert {d["rule"] for b in sub["bad_rows"] for d in b["defects"]} <= set(RULES)
    assert all(b["row"] >= 3 for b in sub["bad_rows"])


def test_bad_share_scales_with_rows(registry: Registry, tmp_path: Path) -> None:
    manifest = generate_submissions(registry, tmp_path, DAY, rows_per_source=1000)
    assert {s.expected_quarantined for s in manifest.submissions} == {40}


def test_registers_share_one_city_and_break_one_rule_per_bad_row(registry: Registry, generated) -> None:
    # The quarantine itself is checked against the validator in tests/dbt (land → validate → compare).
    _, manifest = generated
    registered = {}
    for sub in manifest.submissions:
        source = registry.source(sub.source_id)
        if source.dataset == "admin_penalty":
            continue
        text = sub.path.read_bytes().decode("gb18030" if source.department == "scjgj" else "utf-8-sig")
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert rows[0] == list(source.columns) and len(rows) == ROWS + 1
        assert sub.expected_quarantined == round(ROWS * 0.04) and all(len(b.defects) == 1 for b in sub.bad_rows)
        registered[source.dataset] = {dict(zip(rows[0], row, strict=True)).get("统一社会信用代码") for row in rows[1:]}
    # the same companies are registered by market regulation and licensed: what the warehouse merges
    assert registered["enterprise_registration"] & registered["admin_license"]
