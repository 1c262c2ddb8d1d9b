"""Penalty files of any size for tests and benchmarks, and single valid rows (penalties, licences): valid
codes (python-stdnum), fast to write.

The demo's realistic submissions come from :mod:`huiju_demo.generate`; these are plainer and
about ten times faster, for a million rows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
from stdnum.cn import ric, uscc

from huiju.registry import Source


def valid_uscc(serial: int) -> str:
    """A valid 18-character USCC built around a serial number (org code check char computed)."""
    body = f"{serial % 10**8:08d}"
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    check = 11 - sum(int(ch) * w for ch, w in zip(body, weights, strict=True)) % 11
    org = body + {10: "X", 11: "0"}.get(check, str(check))
    prefix = "91110105" + org
    return prefix + uscc.calc_check_digit(prefix)


def valid_id_number(serial: int) -> str:
    """A valid 18-digit resident ID number."""
    prefix = f"110105{1960 + serial % 40}{1 + serial % 12:02d}{1 + serial % 28:02d}{serial % 1000:03d}"
    return prefix + ric.calc_check_digit(prefix + "0")  # stdnum wants a placeholder check digit


def _party(serial: int) -> dict[str, str]:
    """The 行政相对人 and authority items of a valid 双公示 decision (penalty or licence)."""
    return {"party_name": f"测试企业{serial}有限公司", "party_type": "法人及非法人组织", "uscc": valid_uscc(serial),
            "legal_rep": "张三", "legal_rep_id_no": valid_id_number(serial), "authority": "测试市市场监督管理局",
            "authority_uscc": valid_uscc(10**7 + serial % 1000)}


def penalty_row(source: Source, serial: int, tag: str = "T") -> dict[str, str]:
    """One valid penalty keyed by the source's own headers."""
    values = {
        **_party(serial),
        "decision_no": f"测罚〔2026〕{tag}{serial}号",
        "penalty_type": "罚款",
        "penalty_content": "责令改正，罚款",
        "fine_amount_wan": "1.25",
        "decision_date": "2026-03-05",
        "publish_until": "2029-03-05",
    }
    return {header: values[field] for header, field in source.columns.items()}


def license_row(source: Source, serial: int, tag: str = "T") -> dict[str, str]:
    """One valid licence (行政许可) keyed by the source's own headers."""
    values = {
        **_party(serial),
        "decision_no": f"测许〔2026〕{tag}{serial}号",
        "license_category": "普通",
        "certificate_name": "食品经营许可证",
        "license_no": f"JY{tag}{serial:08d}",
        "license_content": "预包装食品销售",
        "decision_date": "2026-03-05",
        "valid_from": "2026-03-05",
        "valid_to": "2031-03-04",
    }
    return {header: values[field] for header, field in source.columns.items()}


def write_penalty_csv(path: Path, source: Source, rows: int, *, tag: str = "T", encoding: str = "gb18030",
                      overrides: dict[int, dict[str, str]] | None = None) -> Path:
    """A CSV of ``rows`` valid penalties (headers as the source expects); ``overrides`` edits rows by index.

    Codes repeat every 1,000 rows (computing check digits is the slow part); decision numbers never do.
    """
    overrides = overrides or {}
    headers = list(source.columns)
    decision_header = source.header_for_field["decision_no"]
    templates = [penalty_row(source, index, tag) for index in range(min(rows, 1000))]
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for index in range(rows):
            row = dict(templates[index % 1000])
            row[decision_header] = f"测罚〔2026〕{tag}{index}号"
            row.update(overrides.get(index, {}))
            writer.writerow([row[h] for h in headers])
    return path


def write_penalty_xlsx(path: Path, source: Source, rows: int, *, tag: str = "X", title: str | None = None) -> Path:
    """A workbook of ``rows`` valid penalties, with a title row above the header when ``title`` is given."""
    headers = list(source.columns)
    decision_header = source.header_for_field["decision_no"]
    templates = [penalty_row(source, index, tag) for index in range(min(rows, 1000))]
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    if title is not None:
        sheet.append([title])
    sheet.append(headers)
    for index in range(rows):
        row = dict(templates[index % 1000])
        row[decision_header] = f"测罚〔2026〕{tag}{index}号"
        sheet.append([row[h] for h in headers])
    workbook.save(path)
    return path
