"""How each demo department writes its data: the fictional city, its style (dates, encodings, templates), its files.

Files are byte-identical for the same inputs: a workbook's document properties and zip
timestamps are pinned (:data:`FIXED_TIMESTAMP`), and every random choice is seeded from the
seed, the source and the day (:func:`source_seed`, never ``hash()``).
"""

from __future__ import annotations

import csv
import shutil
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter

from huiju.registry import Department, Source

# The demo city is fictional on purpose; 3312 is a prefecture code Zhejiang (33) never
# assigned, so the codes look real without pointing at a real place.
CITY = "示范市"
CITY_CODE = "331200"
DISTRICTS: tuple[tuple[str, str], ...] = (("江北区", "331202"), ("江南区", "331203"), ("高新区", "331204"))

# Pinned so a workbook's bytes depend only on its contents (openpyxl and zipfile stamp "now").
FIXED_TIMESTAMP = datetime(2026, 1, 1, 8, 0, 0)


def iso_date(y: int, m: int, d: int) -> str:
    return f"{y:04d}-{m:02d}-{d:02d}"


def slash_date(y: int, m: int, d: int) -> str:
    return f"{y}/{m}/{d}"


@dataclass(frozen=True)
class Style:
    """How one department writes its file, beyond what the registry says."""

    encoding: str  # CSV only
    date_text: Callable[[int, int, int], str]  # takes parts, not a date: it also writes impossible dates
    abbreviation: str  # 机关简称 in decision numbers
    authorities: tuple[tuple[str, str], ...]  # (name, region code)
    facts: tuple[str, ...]
    laws: tuple[str, ...]


_STYLES: dict[str, Style] = {
    "scjgj": Style(
        encoding="gb18030",  # its case system exports GBK; GB18030 is the superset that never fails
        date_text=iso_date,
        abbreviation="示市监",
        authorities=((f"{CITY}市场监督管理局", CITY_CODE), (f"{CITY}市场监督管理局江北分局", "331202"),
                     (f"{CITY}市场监督管理局高新区分局", "331204")),
        facts=("经营超过保质期的食品", "销售不合格产品", "发布虚假广告", "未按规定明码标价",
               "生产经营标签不符合规定的预包装食品", "使用未经检验的特种设备"),
        laws=("《中华人民共和国食品安全法》", "《中华人民共和国产品质量法》", "《中华人民共和国广告法》",
              "《中华人民共和国价格法》", "《中华人民共和国特种设备安全法》"),
    ),
    "sthjj": Style(
        encoding="utf-8-sig",
        date_text=iso_date,
        abbreviation="示环",
        authorities=((f"{CITY}生态环境局", CITY_CODE), (f"{CITY}生态环境局江南分局", "331203")),
        facts=("超标排放大气污染物", "未依法报批建设项目环境影响报告表擅自开工建设", "危险废物贮存不规范",
               "通过暗管排放水污染物", "未按规定开展自行监测", "无证排放污染物"),
        laws=("《中华人民共和国大气污染防治法》", "《中华人民共和国环境影响评价法》",
              "《中华人民共和国固体废物污染环境防治法》", "《中华人民共和国水污染防治法》",
              "《排污许可管理条例》"),
    ),
    "swj": Style(
        encoding="utf-8-sig",  # exported with a BOM so Excel opens it as UTF-8
        date_text=slash_date,
        abbreviation="示税",
        authorities=((f"国家税务总局{CITY}税务局稽查局", CITY_CODE), (f"国家税务总局{CITY}江北区税务局", "331202")),
        facts=("未按照规定期限办理纳税申报", "虚开增值税普通发票", "少缴应纳税款", "未按照规定保管发票",
               "未按照规定设置、保管账簿"),
        laws=("《中华人民共和国税收征收管理法》", "《中华人民共和国发票管理办法》"),
    ),
    # The provincial credit platform's backflow (省回流): decisions of the province's own departments.
    "province": Style(
        encoding="utf-8-sig",
        date_text=iso_date,
        abbreviation="示省",
        authorities=(("示范省市场监督管理局", CITY_CODE), ("示范省生态环境厅", CITY_CODE)),
        facts=("跨市经营未按规定备案", "销售不合格产品", "超标排放大气污染物"),
        laws=("《中华人民共和国产品质量法》", "《中华人民共和国大气污染防治法》"),
    ),
}


def style_for(department: Department, source: Source) -> Style:
    """The department's style; a department added later gets plain defaults rather than an error."""
    if department.code in _STYLES:
        return _STYLES[department.code]
    encoding = "utf-8-sig" if source.encoding in ("auto", "utf-8") else source.encoding
    return Style(encoding=encoding, date_text=iso_date, abbreviation=f"示{department.name[:2]}",
                  authorities=((f"{CITY}{department.name}", CITY_CODE),),
                  facts=("违反相关管理规定",), laws=("相关法律法规",))


class BadDate(str):
    """An impossible date already written in the department's format (kept apart from good dates)."""


def source_seed(seed: int, source_id: str, day: date) -> int:
    # crc32, never hash(): str hashes are salted per process and would break determinism.
    return zlib.crc32(f"{seed}:{source_id}:{day.isoformat()}".encode())


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a common year
        return day.replace(year=day.year + years, day=28)


def csv_value(value: Any, style: Style) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return style.date_text(value.year, value.month, value.day)
    return str(value)  # Decimal → plain "12.3400"; text, BadDate as is


def write_csv(path: Path, source: Source, style: Style, title: str, headers: list[str],
               fields: list[str], rows: Iterable[dict[str, Any]]) -> None:
    # newline="" and csv's default "\r\n" terminator: line endings as Excel writes them.
    with path.open("w", encoding=style.encoding, newline="") as fh:
        writer = csv.writer(fh)
        for line in range(1, source.header_row):
            writer.writerow([title] if line == 1 else [])
        writer.writerow(headers)
        writer.writerows([csv_value(row[f], style) for f in fields] for row in rows)


def _xlsx_value(value: Any) -> Any:
    if value is None or value == "":
        return None  # an empty cell, as a person leaves it
    if isinstance(value, Decimal):
        return float(value)  # a numeric cell
    return value  # str (codes stay text cells, never numbers), date (a real date cell), BadDate (text)


class _FixedTimeZipFile(ZipFile):
    """A zip whose members all carry one fixed time, so equal workbooks are equal bytes."""

    def _info(self, name: str) -> ZipInfo:
        info = ZipInfo(name, date_time=FIXED_TIMESTAMP.timetuple()[:6])
        info.compress_type = ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    def writestr(self, zinfo_or_arcname: Any, data: Any, compress_type: Any = None,
                 compresslevel: Any = None) -> None:
        if not isinstance(zinfo_or_arcname, ZipInfo):
            zinfo_or_arcname = self._info(str(zinfo_or_arcname))
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(self, filename: Any, arcname: Any = None, compress_type: Any = None,
              compresslevel: Any = None) -> None:
        # openpyxl's write-only sheets arrive as a temporary file; stream it, it can be large.
        with open(filename, "rb") as src, self.open(self._info(str(arcname or filename)), "w",
                                                    force_zip64=True) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


def write_xlsx(path: Path, source: Source, department: Department, title: str, headers: list[str],
                fields: list[str], rows: Iterable[dict[str, Any]], sheet_title: str) -> None:
    wb = Workbook(write_only=True)  # streams rows: 100,000-row workbooks stay cheap
    wb.properties.creator = wb.properties.lastModifiedBy = department.name
    wb.properties.created = wb.properties.modified = FIXED_TIMESTAMP
    ws = wb.create_sheet(sheet_title)
    for col in range(1, len(headers) + 1):
        ws.column_dimensions[get_column_letter(col)].width = 22
    if source.header_row > 1:
        cell = WriteOnlyCell(ws, value=title)
        cell.font = Font(bold=True, size=14)
        cell.alignment = Alignment(horizontal="center", vertical="center")
        ws.merged_cells.add(f"A1:{get_column_letter(len(headers))}1")
        ws.append([cell])
        for _ in range(2, source.header_row):
            ws.append([])
    header_font = Font(bold=True)
    header_cells = []
    for header in headers:
        cell = WriteOnlyCell(ws, value=header)
        cell.font = header_font
        header_cells.append(cell)
    ws.append(header_cells)
    for row in rows:
        ws.append([_xlsx_value(row[f]) for f in fields])
    # ExcelWriter directly, not wb.save(): save_workbook stamps properties.modified with "now".
    ExcelWriter(wb, _FixedTimeZipFile(path, "w", ZIP_DEFLATED, allowZip64=True)).save()


def file_title(department: Department, dataset_title: str, day: date) -> str:
    return f"{CITY}{department.name}{dataset_title}信息公示表（{day.year}年{day.month}月{day.day}日报送）"
