"""Write the demo departments' daily submissions (行政处罚, registers, licences, lists) into their inboxes.

Each ``channel: inbox`` source gets one file, ``<inbox>/<source_id>/<source_id>_<YYYYMMDD>.<ext>``,
written the way that department really sends it: the column headers of its own system
(``Source.columns``), its own date format and encoding, and for the Excel template a merged
title row above the header. The rows look real (Faker ``zh_CN``; USCCs and ID numbers with
correct check characters; real dates) except for a known few: exactly
``round(rows_per_source * 0.04)`` rows per source carry one deliberate defect each, and the
returned :class:`DemoManifest` says which row (as the department sees it in its own file)
breaks which rule, so that tests and the demo can check the quarantine to the row.

Everything is derived from ``seed``, the source id and ``day``: the same inputs give
byte-identical files (the workbook included: its document properties and zip timestamps
are pinned).
"""

from __future__ import annotations

import csv
import math
import random
import shutil
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

from faker import Faker
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter
from stdnum.cn import ric
from stdnum.cn import uscc as stdnum_uscc

from huiju.registry import Dataset, Department, Registry, Source

DATASET = "admin_penalty"
BAD_ROW_SHARE = 0.04
RULES = ("required", "enum", "uscc", "id_number", "date", "number")

# The defects handed out round-robin to the bad rows: (field broken, rule that catches it).
DEFECTS: tuple[tuple[str, str], ...] = (
    ("uscc", "uscc"),
    ("legal_rep_id_no", "id_number"),
    ("party_name", "required"),
    ("decision_date", "date"),
    ("party_type", "enum"),
    ("fine_amount_wan", "number"),
)

# The demo city is fictional on purpose; 3312 is a prefecture code Zhejiang (33) never
# assigned, so the codes look real without pointing at a real place.
CITY = "示范市"
CITY_CODE = "331200"
DISTRICTS: tuple[tuple[str, str], ...] = (("江北区", "331202"), ("江南区", "331203"), ("高新区", "331204"))

# Pinned so a workbook's bytes depend only on its contents (openpyxl and zipfile stamp "now").
FIXED_TIMESTAMP = datetime(2026, 1, 1, 8, 0, 0)

PARTY_TYPES = ("法人及非法人组织", "个体工商户", "自然人")
PARTY_TYPE_WEIGHTS = (75, 17, 8)
PENALTY_TYPES = ("罚款", "警告", "没收违法所得", "责令停产停业", "暂扣许可证件")
PENALTY_TYPE_WEIGHTS = (60, 20, 10, 5, 5)
_ACTIONS = {"罚款": "处罚款{fine}万元", "警告": "给予警告", "没收违法所得": "没收违法所得",
            "责令停产停业": "责令停产停业", "暂扣许可证件": "暂扣相关许可证件"}
BAD_PARTY_TYPES = ("企业", "法人", "个体户", "其他组织")
BAD_AMOUNTS = ("约{}万", "{}万元", "人民币{}万元", "{}（万元）")  # the fine, as people type it
PARTY_POOL_SIZE = 3000
SHOP_KINDS = ("便利店", "餐馆", "五金店", "理发店", "水果店", "烟酒店", "汽车修理部", "小吃店", "药店")

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_RIC_CHECK_CHARS = "0123456789X"

# County codes the legal representatives' ID numbers are drawn from (several provinces:
# 11 北京, 31 上海, 44 广东, 51 四川, 32 江苏, 33 浙江, 42 湖北, 50 重庆). Which birth years
# each is valid for is read from stdnum's own table, so every good ID passes ric.validate.
_ID_REGION_CANDIDATES = (
    "110101", "110102", "110105", "110106", "110108", "310101", "310104", "310105", "310106",
    "310110", "440103", "440104", "440105", "440106", "510104", "510105", "510106", "510107",
    "320102", "320104", "330102", "330106", "420102", "420106", "500103", "500105",
)
_BIRTH_YEARS = (1950, 2000)


@dataclass(frozen=True)
class BadRow:
    """One deliberately broken row: where it is in the department's file and what is wrong."""

    row: int  # 1-based spreadsheet row number in the department's own file
    decision_no: str
    defects: frozenset[tuple[str, str]]  # (field, rule)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "row": self.row,
            "decision_no": self.decision_no,
            "defects": [{"field": f, "rule": r} for f, r in sorted(self.defects)],
        }


@dataclass(frozen=True)
class SourceSubmission:
    """The file written for one source and what must happen to its rows."""

    source_id: str
    path: Path | None  # None when the rows are served by a simulated department system, not a file
    format: str
    rows_written: int
    first_data_row: int  # spreadsheet row of the first data row (header_row + 1)
    expected_quarantined: int
    bad_rows: tuple[BadRow, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "source_id": self.source_id,
            "path": str(self.path) if self.path is not None else None,
            "format": self.format,
            "rows_written": self.rows_written,
            "first_data_row": self.first_data_row,
            "expected_quarantined": self.expected_quarantined,
            "bad_rows": [bad.to_dict() for bad in self.bad_rows],
        }


@dataclass(frozen=True)
class DemoManifest:
    """What :func:`generate_submissions` wrote, per source, in source-id order."""

    day: date
    seed: int
    rows_per_source: int
    submissions: tuple[SourceSubmission, ...]

    def submission(self, source_id: str) -> SourceSubmission:
        """The submission of ``source_id``."""
        for sub in self.submissions:
            if sub.source_id == source_id:
                return sub
        raise KeyError(f"no submission for source {source_id!r} in the manifest")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (``json.dumps(manifest.to_dict())``)."""
        return {
            "day": self.day.isoformat(),
            "seed": self.seed,
            "rows_per_source": self.rows_per_source,
            "sources": {sub.source_id: sub.to_dict() for sub in self.submissions},
        }


def _iso(y: int, m: int, d: int) -> str:
    return f"{y:04d}-{m:02d}-{d:02d}"


def _slash(y: int, m: int, d: int) -> str:
    return f"{y}/{m}/{d}"


@dataclass(frozen=True)
class _Style:
    """How one department writes its file, beyond what the registry says."""

    encoding: str  # CSV only
    date_text: Callable[[int, int, int], str]  # takes parts, not a date: it also writes impossible dates
    abbreviation: str  # 机关简称 in decision numbers
    authorities: tuple[tuple[str, str], ...]  # (name, region code)
    facts: tuple[str, ...]
    laws: tuple[str, ...]


_STYLES: dict[str, _Style] = {
    "scjgj": _Style(
        encoding="gb18030",  # its case system exports GBK; GB18030 is the superset that never fails
        date_text=_iso,
        abbreviation="示市监",
        authorities=((f"{CITY}市场监督管理局", CITY_CODE), (f"{CITY}市场监督管理局江北分局", "331202"),
                     (f"{CITY}市场监督管理局高新区分局", "331204")),
        facts=("经营超过保质期的食品", "销售不合格产品", "发布虚假广告", "未按规定明码标价",
               "生产经营标签不符合规定的预包装食品", "使用未经检验的特种设备"),
        laws=("《中华人民共和国食品安全法》", "《中华人民共和国产品质量法》", "《中华人民共和国广告法》",
              "《中华人民共和国价格法》", "《中华人民共和国特种设备安全法》"),
    ),
    "sthjj": _Style(
        encoding="utf-8-sig",
        date_text=_iso,
        abbreviation="示环",
        authorities=((f"{CITY}生态环境局", CITY_CODE), (f"{CITY}生态环境局江南分局", "331203")),
        facts=("超标排放大气污染物", "未依法报批建设项目环境影响报告表擅自开工建设", "危险废物贮存不规范",
               "通过暗管排放水污染物", "未按规定开展自行监测", "无证排放污染物"),
        laws=("《中华人民共和国大气污染防治法》", "《中华人民共和国环境影响评价法》",
              "《中华人民共和国固体废物污染环境防治法》", "《中华人民共和国水污染防治法》",
              "《排污许可管理条例》"),
    ),
    "swj": _Style(
        encoding="utf-8-sig",  # exported with a BOM so Excel opens it as UTF-8
        date_text=_slash,
        abbreviation="示税",
        authorities=((f"国家税务总局{CITY}税务局稽查局", CITY_CODE), (f"国家税务总局{CITY}江北区税务局", "331202")),
        facts=("未按照规定期限办理纳税申报", "虚开增值税普通发票", "少缴应纳税款", "未按照规定保管发票",
               "未按照规定设置、保管账簿"),
        laws=("《中华人民共和国税收征收管理法》", "《中华人民共和国发票管理办法》"),
    ),
}


def _style_for(department: Department, source: Source) -> _Style:
    """The department's style; a department added later gets plain defaults rather than an error."""
    if department.code in _STYLES:
        return _STYLES[department.code]
    encoding = "utf-8-sig" if source.encoding in ("auto", "utf-8") else source.encoding
    return _Style(encoding=encoding, date_text=_iso, abbreviation=f"示{department.name[:2]}",
                  authorities=((f"{CITY}{department.name}", CITY_CODE),),
                  facts=("违反相关管理规定",), laws=("相关法律法规",))


# --- codes with valid check characters ---------------------------------------------------

def org_code_check_char(body: str) -> str:
    """GB 11714 check character of an 8-character organisation code body.

    python-stdnum has no helper for it (``stdnum.cn`` only has ``ric`` and ``uscc``), so the
    arithmetic is here: weights 3 7 9 10 5 8 4 2, characters 0-9 then A-Z worth 0-35,
    C9 = 11 - (sum mod 11), where 10 is written ``X`` and 11 is written ``0``.
    """
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(ch, 36) * w for ch, w in zip(body, weights, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def make_uscc(rng: random.Random, authority: str, category: str, region: str, org_prefix: str = "") -> str:
    """A USCC (GB 32100) with a valid organisation-code check char and a valid 18th char."""
    body = org_prefix + "".join(rng.choices("0123456789", k=8 - len(org_prefix)))
    first17 = f"{authority}{category}{region}{body}{org_code_check_char(body)}"
    return first17 + stdnum_uscc.calc_check_digit(first17)


def make_id_number(rng: random.Random) -> str:
    """An 18-digit resident ID (GB 11643) that passes ``stdnum.cn.ric.validate``."""
    region, (first, last) = rng.choice(_id_regions())
    birth = date(first, 1, 1) + timedelta(days=rng.randrange((date(last, 12, 31) - date(first, 1, 1)).days + 1))
    body = f"{region}{birth:%Y%m%d}{rng.randrange(1, 1000):03d}"
    return body + ric.calc_check_digit(body + "0")  # calc_check_digit ignores the last char


@cache
def _id_regions() -> tuple[tuple[str, tuple[int, int]], ...]:
    """Candidate county codes with the birth years (within 1950-2000) stdnum accepts for each.

    Some codes only existed from, say, 1983; a birth year outside that fails ric.validate.
    """
    found = []
    for code in _ID_REGION_CANDIDATES:
        years = [y for y in range(_BIRTH_YEARS[0], _BIRTH_YEARS[1] + 1)
                 if ric.is_valid(f"{code}{y}0101001" + ric.calc_check_digit(f"{code}{y}01010010"))]
        # Keep only codes valid over one unbroken span of years, so any year drawn in it is valid.
        if len(years) >= 10 and years[-1] - years[0] + 1 == len(years):
            found.append((code, (years[0], years[-1])))
    if not found:
        raise RuntimeError("none of the demo's ID region codes is known to python-stdnum")
    return tuple(found)


def _wrong_char(rng: random.Random, good: str, alphabet: str) -> str:
    """A character of ``alphabet`` that is not ``good`` (so the check fails for certain)."""
    return alphabet[(alphabet.index(good) + rng.randrange(1, len(alphabet))) % len(alphabet)]


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a common year
        return day.replace(year=day.year + years, day=28)


# --- rows ----------------------------------------------------------------------------------

class _BadDate(str):
    """An impossible date already written in the department's format (kept apart from good dates)."""


def _source_seed(seed: int, source_id: str, day: date) -> int:
    # crc32, never hash(): str hashes are salted per process and would break determinism.
    return zlib.crc32(f"{seed}:{source_id}:{day.isoformat()}".encode())


def _authority_codes(style: _Style, seed: int) -> list[tuple[str, str]]:
    """Each authority's own USCC, stable across days (a bureau keeps its code)."""
    out = []
    for name, region in style.authorities:
        rng = random.Random(zlib.crc32(f"{seed}:authority:{name}".encode()))  # noqa: S311 - demo data, not secrets
        # '1' = registered by 机构编制, '1' = 机关; organs' organisation codes start with 0.
        out.append((name, make_uscc(rng, "1", "1", region, org_prefix="0")))
    return out


def _fine(rng: random.Random) -> Decimal:
    """A fine in 万元 between 0.05 and 50 with 2-4 decimals, log-uniform (small fines are common)."""
    places = rng.choice((2, 3, 4))
    value = Decimal(str(math.exp(rng.uniform(math.log(0.05), math.log(50)))))
    value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return min(max(value, Decimal("0.05")), Decimal("50")).quantize(Decimal(1).scaleb(-places))


@dataclass(frozen=True)
class _Party:
    """Someone who can be penalised: a company, a sole trader (个体工商户) or a person."""

    name: str
    party_type: str
    uscc: str
    legal_rep: str
    rep_id: str


def _make_party(faker: Faker, rng: random.Random, party_type: str) -> _Party:
    if party_type == "法人及非法人组织":
        company = faker.company()
        _, region = rng.choice(DISTRICTS)
        return _Party(f"{CITY}{company}" if rng.random() < 0.4 else company, party_type,
                      make_uscc(rng, "9", "1", region), faker.name(), make_id_number(rng))
    if party_type == "个体工商户":
        district, region = rng.choice(DISTRICTS)
        operator = faker.name()
        return _Party(f"{CITY}{district}{operator[0]}记{rng.choice(SHOP_KINDS)}", party_type,
                      make_uscc(rng, "9", "2", region),  # category 2: 个体工商户
                      operator, make_id_number(rng))
    return _Party(faker.name(), party_type, "", "", "")  # 自然人: no USCC, no legal representative


def _plan_defects(rng: random.Random, n: int, fields: list[str]) -> dict[int, tuple[str, str]]:
    """Which rows (0-based) get which defect: deterministic positions, defects in turn."""
    bad_positions = sorted(rng.sample(range(n), round(n * BAD_ROW_SHARE)))
    # Only defects in columns the department sends: a defect in an unsent field would go unseen.
    usable = [d for d in DEFECTS if d[0] in fields]
    return {pos: usable[k % len(usable)] for k, pos in enumerate(bad_positions)} if usable else {}


def _make_rows(style: _Style, day: date, n: int, seed: int, rng: random.Random, faker: Faker,
               defects: dict[int, tuple[str, str]]) -> Iterator[dict[str, Any]]:
    """``n`` rows as field → value (dates as ``date``, fines as ``Decimal``), made as they are written.

    A generator, so 100,000-row files never sit in memory.
    """
    authorities = _authority_codes(style, seed)

    # Rows draw their parties from a pool: repeat offenders are real, and Faker costs ~0.3 ms a
    # party, which a fresh party per row would make minutes at 100,000 rows.
    pool = [_make_party(faker, rng, rng.choices(PARTY_TYPES, PARTY_TYPE_WEIGHTS)[0])
            for _ in range(max(1, min(n, PARTY_POOL_SIZE)))]
    companies = [p for p in pool if p.party_type == PARTY_TYPES[0]] or [_make_party(faker, rng, PARTY_TYPES[0])]

    # Registers list decisions in date order, and their serials follow that order.
    decision_dates = sorted(day - timedelta(days=rng.randint(1, 60)) for _ in range(n))
    width = max(3, len(str(n)))
    for i, decided in enumerate(decision_dates):
        defect = defects.get(i)
        rule = defect[1] if defect else None
        # A defect on the USCC, the ID or the type needs a party that has them.
        party = rng.choice(companies if rule in ("uscc", "id_number", "enum") else pool)
        penalty_type = "罚款" if rule == "number" else rng.choices(PENALTY_TYPES, PENALTY_TYPE_WEIGHTS)[0]

        fine = _fine(rng) if penalty_type == "罚款" else None
        action = _ACTIONS[penalty_type].format(fine=fine)
        law = rng.choice(style.laws)
        content = f"当事人{rng.choice(style.facts)}，违反了{law}的规定，依据{law}，决定{action}。"
        authority, authority_uscc = rng.choice(authorities)

        row: dict[str, Any] = {
            "party_name": party.name,
            "party_type": party.party_type,
            "uscc": party.uscc,
            "legal_rep": party.legal_rep,
            "legal_rep_id_no": party.rep_id,
            "decision_no": f"{style.abbreviation}罚〔{decided.year}〕{day:%m%d}{i + 1:0{width}d}号",
            "penalty_type": penalty_type,
            "penalty_content": content,
            "fine_amount_wan": fine,
            "decision_date": decided,
            "publish_until": _add_years(decided, 3),
            "authority": authority,
            "authority_uscc": authority_uscc,
        }
        if rule == "uscc":
            row["uscc"] = party.uscc[:-1] + _wrong_char(rng, party.uscc[-1], _USCC_ALPHABET)
        elif rule == "id_number":
            row["legal_rep_id_no"] = party.rep_id[:-1] + _wrong_char(rng, party.rep_id[-1], _RIC_CHECK_CHARS)
        elif rule == "required":
            row["party_name"] = ""
        elif rule == "date":
            month, dom = rng.choice(((2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31)))
            row["decision_date"] = _BadDate(style.date_text(decided.year, month, dom))
        elif rule == "enum":
            row["party_type"] = rng.choice(BAD_PARTY_TYPES)
        elif rule == "number":
            row["fine_amount_wan"] = rng.choice(BAD_AMOUNTS).format(fine)
        yield row


# --- writers -------------------------------------------------------------------------------

def _csv_value(value: Any, style: _Style) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return style.date_text(value.year, value.month, value.day)
    return str(value)  # Decimal → plain "12.3400"; text, _BadDate as is


def _write_csv(path: Path, source: Source, style: _Style, title: str, headers: list[str],
               fields: list[str], rows: Iterable[dict[str, Any]]) -> None:
    # newline="" and csv's default "\r\n" terminator: line endings as Excel writes them.
    with path.open("w", encoding=style.encoding, newline="") as fh:
        writer = csv.writer(fh)
        for line in range(1, source.header_row):
            writer.writerow([title] if line == 1 else [])
        writer.writerow(headers)
        writer.writerows([_csv_value(row[f], style) for f in fields] for row in rows)


def _xlsx_value(value: Any) -> Any:
    if value is None or value == "":
        return None  # an empty cell, as a person leaves it
    if isinstance(value, Decimal):
        return float(value)  # a numeric cell
    return value  # str (codes stay text cells, never numbers), date (a real date cell), _BadDate (text)


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


def _write_xlsx(path: Path, source: Source, department: Department, title: str, headers: list[str],
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


def _title(department: Department, dataset_title: str, day: date) -> str:
    return f"{CITY}{department.name}{dataset_title}信息公示表（{day.year}年{day.month}月{day.day}日报送）"


def _generate_one(registry: Registry, source: Source, inbox_dir: Path, day: date, rows_per_source: int,
                  seed: int) -> SourceSubmission:
    """Write one source's file and describe it."""
    department = registry.departments[source.department]
    dataset = registry.dataset_of(source)
    style = _style_for(department, source)
    headers = list(source.columns)
    fields = [source.columns[h] for h in headers]

    source_seed = _source_seed(seed, source.id, day)
    faker = Faker("zh_CN")
    faker.seed_instance(source_seed)
    rng = random.Random(source_seed)  # noqa: S311 - reproducible demo data, not secrets
    defects = _plan_defects(rng, rows_per_source, fields)
    bad_decision_nos: dict[int, str] = {}
    written = 0

    def tally(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        # Notes what the manifest needs on the rows' way to the file: the rows are not kept.
        nonlocal written
        for i, row in enumerate(rows):
            if i in defects:
                bad_decision_nos[i] = row["decision_no"]
            written += 1
            yield row

    rows = tally(_make_rows(style, day, rows_per_source, seed, rng, faker, defects))
    folder = inbox_dir / source.id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{source.id}_{day:%Y%m%d}.{source.format}"
    title = _title(department, dataset.title, day)
    if source.format == "csv":
        _write_csv(path, source, style, title, headers, fields, rows)
    else:
        _write_xlsx(path, source, department, title, headers, fields, rows, source.sheet or dataset.title)

    first = source.header_row + 1
    bad_rows = tuple(
        BadRow(row=first + i, decision_no=bad_decision_nos[i], defects=frozenset({defect}))
        for i, defect in sorted(defects.items())
    )
    return SourceSubmission(source_id=source.id, path=path, format=source.format, rows_written=written,
                            first_data_row=first, expected_quarantined=len(bad_rows), bad_rows=bad_rows)


def generate_records(registry: Registry, source: Source, day: date, *, rows: int = 200,
                     seed: int = 20261120) -> tuple[list[dict[str, str]], SourceSubmission]:
    """The demo rows of a source that serves records (REST, SOAP, front-end database), not files.

    Each record is keyed by the source's own column names with values as text in the
    department's style; the same defects as in files, at the same share. Row numbers in the
    returned description are 1-based positions in the list (how ``land_records`` numbers rows).
    """
    if source.dataset != DATASET:
        raise ValueError(f"the demo generates only {DATASET}; source {source.id!r} delivers {source.dataset}")
    department = registry.departments[source.department]
    style = _style_for(department, source)
    headers = list(source.columns)
    fields = [source.columns[h] for h in headers]
    source_seed = _source_seed(seed, source.id, day)
    faker = Faker("zh_CN")
    faker.seed_instance(source_seed)
    rng = random.Random(source_seed)  # noqa: S311 - reproducible demo data, not secrets
    defects = _plan_defects(rng, rows, fields)
    records: list[dict[str, str]] = []
    bad: list[BadRow] = []
    for i, row in enumerate(_make_rows(style, day, rows, seed, rng, faker, defects)):
        records.append({header: _csv_value(row.get(field), style) for header, field in zip(headers, fields,
                                                                                            strict=True)})
        if i in defects:
            bad.append(BadRow(row=i + 1, decision_no=row["decision_no"], defects=frozenset({defects[i]})))
    described = SourceSubmission(source_id=source.id, path=None, format="records", rows_written=len(records),
                                 first_data_row=1, expected_quarantined=len(bad), bad_rows=tuple(bad))
    return records, described


def generate_submissions(registry: Registry, inbox_dir: Path, day: date, *, rows_per_source: int = 200,
                         seed: int = 20261120, sources: Iterable[str] | None = None) -> DemoManifest:
    """Write one submission file per inbox source for ``day`` and say which rows are bad.

    Files go to ``inbox_dir/<source_id>/<source_id>_<YYYYMMDD>.<csv|xlsx>`` (replacing one
    already there). Exactly ``round(rows_per_source * 0.04)`` rows of each file carry one
    defect each, from :data:`DEFECTS` in turn; every other row passes all of :data:`RULES`.
    Sources of the other datasets (registers, licences, lists) get CSVs drawn from one demo city
    (see ``_city``), with the same share of defects, one per rule their dataset declares in turn;
    for them ``BadRow.decision_no`` holds the row's natural key (fields joined by ``/``).

    ``sources`` names the file-channel sources to write (e.g. an FTP source's file, into the
    folder its simulated server serves); by default every inbox source, and every portal source
    taking uploads (the workbook its department fills in and uploads through the portal).
    """
    from huiju.channels import FILE_CHANNELS

    if rows_per_source < 0:
        raise ValueError("rows_per_source must not be negative")
    if sources is None:
        sources = [sid for sid, source in sorted(registry.sources.items())
                   if source.channel == "inbox" or (source.channel == "portal" and source.channel_settings.upload)]
    selected = [registry.source(sid) for sid in sources]
    for source in selected:
        if source.channel not in FILE_CHANNELS:
            raise ValueError(f"source {source.id!r} delivers records through {source.channel}, not files; "
                             "use generate_records")
        if source.dataset != DATASET and source.format != "csv":
            raise ValueError(f"the demo writes {source.dataset} as CSV only; "
                             f"source {source.id!r} wants {source.format}")
    submissions = tuple(
        _generate_one(registry, source, inbox_dir, day, rows_per_source, seed) if source.dataset == DATASET
        else _generate_register(registry, source, inbox_dir, day, rows_per_source, seed)
        for source in selected)
    return DemoManifest(day=day, seed=seed, rows_per_source=rows_per_source, submissions=submissions)


# --- the other datasets: registers, licences, lists ---------------------------------------
#
# Their rows come from one demo city (a pool of residents and of organisations derived from the
# seed only, not the day), so the same company is registered by 市场监管, registered for tax,
# licensed, insures its staff and appears on a list, and the same person is a resident, an
# insured employee and a legal representative: what the warehouse merges and profiles. Each
# register's file of a day carries that day's new and changed entries: days overlap (a company
# registered yesterday may change today), which the warehouse reads as corrections.

CITY_POOL_MARGIN = 100  # pool size = rows per source + this, so a day's rows are a sample of it
ENTERPRISE_TYPES = ("有限责任公司", "股份有限公司", "个人独资企业", "合伙企业", "个体工商户", "农民专业合作社")
ENTERPRISE_TYPE_WEIGHTS = (55, 5, 8, 5, 25, 2)
SOCIAL_ORG_TYPES = ("社会团体", "民办非企业单位", "基金会")
SOCIAL_ORG_NAMES = ("{city}{trade}协会", "{city}{trade}研究会", "{city}{district}{trade}培训学校",
                    "{city}{trade}发展基金会")
TRADES = ("餐饮", "物流", "软件", "建筑", "养老服务", "家政", "文化旅游", "电子商务", "书法", "摄影", "青少年体育")
INSURANCE_TYPES = ("企业职工基本养老保险", "失业保险", "工伤保险", "职工基本医疗保险", "生育保险")
LICENSES: dict[str, tuple[tuple[str, str, str], ...]] = {  # department → (许可类别, 证书名称, 内容)
    "scjgj": (
        ("普通", "食品经营许可证", "预包装食品销售、热食类食品制售"),
        ("普通", "食品生产许可证", "糕点、饮料生产"),
        ("登记", "营业执照", "设立登记"),
        ("认可", "特种设备使用登记证", "电梯使用登记"),
    ),
    "zjj": (
        ("普通", "建筑工程施工许可证", "住宅楼新建工程施工"),
        ("核准", "建筑业企业资质证书", "施工总承包三级资质"),
        ("普通", "商品房预售许可证", "商品房预售"),
        ("特许", "燃气经营许可证", "管道燃气经营"),
    ),
}
CREDIT_LISTS = (
    ("红名单", "纳税信用A级纳税人", "连续三年纳税信用评价为A级", "国家税务总局示范市税务局"),
    ("红名单", "守合同重信用企业", "经公示认定为守合同重信用企业", "示范市市场监督管理局"),
    ("黑名单", "失信被执行人", "有履行能力而拒不履行生效法律文书确定的义务", "示范市中级人民法院"),
    ("黑名单", "重大税收违法失信主体", "虚开增值税专用发票", "国家税务总局示范市税务局"),
    ("黑名单", "严重违法失信企业", "被列入经营异常名录届满三年仍未履行相关义务", "示范市市场监督管理局"),
)
ETHNICITIES = ("汉族", "汉族", "汉族", "汉族", "回族", "畲族", "满族")
_ORG_CODE_CHECK_CHARS = "0123456789X"


@dataclass(frozen=True)
class _Resident:
    """A person of the demo city: the ID number carries their birth date and sex."""

    name: str
    id_number: str
    region_code: str
    address: str

    @property
    def birth_date(self) -> date:
        """The birth date encoded in the ID number (GB 11643)."""
        return date(int(self.id_number[6:10]), int(self.id_number[10:12]), int(self.id_number[12:14]))

    @property
    def sex(self) -> str:
        """男 for an odd 17th digit, else 女."""
        return "男" if int(self.id_number[16]) % 2 else "女"


@dataclass(frozen=True)
class _Organisation:
    """A company, sole trader or 社会组织 of the demo city."""

    uscc: str
    name: str
    kind: str  # 企业类型 or 社会组织类型
    legal_rep: _Resident
    capital_wan: Decimal
    established: date
    region_code: str
    address: str

    @property
    def party_type(self) -> str:
        """Its 行政相对人类别 (双公示)."""
        return "个体工商户" if self.kind == "个体工商户" else "法人及非法人组织"


@dataclass(frozen=True)
class _City:
    residents: tuple[_Resident, ...]
    enterprises: tuple[_Organisation, ...]
    social_orgs: tuple[_Organisation, ...]


@cache
def _city(seed: int, size: int) -> _City:
    """The demo city's people and organisations: the same for every source and day of one seed."""
    rng = random.Random(zlib.crc32(f"{seed}:city".encode()))  # noqa: S311 - demo data, not secrets
    faker = Faker("zh_CN")
    faker.seed_instance(zlib.crc32(f"{seed}:city".encode()))

    def address(district: str) -> str:
        return f"{CITY}{district}{faker.street_name()}{rng.randint(1, 300)}号"

    residents = []
    seen_ids: set[str] = set()
    while len(residents) < size:
        district, region = rng.choice(DISTRICTS)
        id_number = make_id_number(rng)
        if id_number not in seen_ids:
            seen_ids.add(id_number)
            residents.append(_Resident(faker.name(), id_number, region, address(district)))

    def capital() -> Decimal:
        return Decimal(rng.choice((3, 5, 10, 50, 100, 200, 500, 1000, 5000)))

    def established() -> date:
        return date(2026, 1, 1) - timedelta(days=rng.randint(30, 365 * 20))

    enterprises = []
    for index in range(size):
        district, region = rng.choice(DISTRICTS)
        kind = rng.choices(ENTERPRISE_TYPES, ENTERPRISE_TYPE_WEIGHTS)[0]
        rep = residents[(index * 7) % size]
        if kind == "个体工商户":
            name = f"{CITY}{district}{rep.name[0]}记{rng.choice(SHOP_KINDS)}"
            uscc = make_uscc(rng, "9", "2", region)
        else:
            company = faker.company()
            name = f"{CITY}{company}" if rng.random() < 0.4 else company
            uscc = make_uscc(rng, "9", "1", region)
        enterprises.append(_Organisation(uscc, name, kind, rep, capital(), established(), region, address(district)))

    social_orgs = []
    for index in range(size):
        district, region = rng.choice(DISTRICTS)
        kind = SOCIAL_ORG_TYPES[index % 3]
        template = SOCIAL_ORG_NAMES[3] if kind == "基金会" else rng.choice(SOCIAL_ORG_NAMES[:3])
        # Names repeat across trades and districts: the serial keeps each organisation's name its own.
        name = template.format(city=CITY, trade=rng.choice(TRADES), district=district) + f"（{index + 1}）"
        category = {"社会团体": "1", "民办非企业单位": "2", "基金会": "3"}[kind]
        social_orgs.append(_Organisation(make_uscc(rng, "5", category, region), name, kind,
                                         residents[(index * 11 + 3) % size], Decimal(rng.choice((3, 10, 200, 800))),
                                         established(), region, address(district)))
    return _City(tuple(residents), tuple(enterprises), tuple(social_orgs))


def _sample(rng: random.Random, items: tuple[Any, ...], n: int) -> list[Any]:
    return rng.sample(items, min(n, len(items)))


def _register_rows(dataset: str, department: Department, style: _Style, city: _City, day: date, n: int,
                   rng: random.Random, defects: dict[int, tuple[str, str]], seed: int) -> list[dict[str, Any]]:
    """``n`` rows of a non-penalty dataset (field → value; dates as ``date``, amounts as ``Decimal``)."""
    rows: list[dict[str, Any]] = []
    if dataset == "enterprise_registration":
        for org in _sample(rng, city.enterprises, n):
            status = rng.choices(("存续", "注销", "吊销"), (90, 7, 3))[0]
            rows.append({
                "uscc": org.uscc, "enterprise_name": org.name, "enterprise_type": org.kind,
                "legal_rep": org.legal_rep.name, "legal_rep_id_no": org.legal_rep.id_number,
                "registered_capital_wan": org.capital_wan, "established_date": org.established, "status": status,
                "closed_date": None if status == "存续" else day - timedelta(days=rng.randint(1, 20)),
                "address": org.address, "region_code": org.region_code,
                "authority": style.authorities[0][0]})
    elif dataset == "tax_registration":
        for org in _sample(rng, city.enterprises, n):
            rows.append({
                "uscc": org.uscc, "taxpayer_name": org.name,
                "taxpayer_kind": "一般纳税人" if org.capital_wan >= 500 else "小规模纳税人",
                "legal_rep": org.legal_rep.name, "legal_rep_id_no": org.legal_rep.id_number,
                "registration_date": org.established + timedelta(days=rng.randint(1, 30)),
                "tax_status": rng.choices(("正常", "非正常", "注销"), (92, 5, 3))[0],
                "credit_rating": rng.choices(("A", "B", "M", "C", "D"), (20, 45, 25, 7, 3))[0],
                "contact_mobile": f"1{rng.choice('3578')}{rng.randrange(10**9):09d}",
                "tax_authority": rng.choice(style.authorities)[0]})
    elif dataset == "social_org_registration":
        for org in _sample(rng, city.social_orgs, n):
            rows.append({
                "uscc": org.uscc, "org_code": org.uscc[8:17], "org_name": org.name, "org_type": org.kind,
                "legal_rep": org.legal_rep.name, "legal_rep_id_no": org.legal_rep.id_number,
                "registered_capital_wan": org.capital_wan, "established_date": org.established,
                "status": rng.choices(("正常", "注销", "撤销"), (94, 4, 2))[0],
                "business_scope": "行业交流、业务培训、咨询服务",
                "supervisor": "" if org.kind == "社会团体" else f"{CITY}教育局",
                "authority": f"{CITY}民政局"})
    elif dataset == "social_insurance":
        for i, person in enumerate(_sample(rng, city.residents, n)):
            employer = city.enterprises[(i * 13 + day.toordinal()) % len(city.enterprises)]
            start = date(rng.randint(2010, 2025), rng.randint(1, 12), 1)
            status = rng.choices(("参保缴费", "暂停缴费", "终止参保"), (85, 5, 10))[0]
            rows.append({
                "unit_uscc": employer.uscc, "unit_name": employer.name, "person_name": person.name,
                "id_number": person.id_number, "insurance_type": rng.choice(INSURANCE_TYPES), "start_date": start,
                "end_date": date(2026, rng.randint(1, 10), 28) if status == "终止参保" else None,
                "status": status, "contribution_base": Decimal(rng.randrange(4000, 30000, 100))})
    elif dataset == "admin_license":
        kinds = LICENSES.get(department.code, (("其他", f"{department.name}许可证", "许可事项"),))
        width = max(3, len(str(n)))
        authorities = _authority_codes(style, seed)  # the same codes as on the department's penalties
        for i in range(n):
            needs_org = defects.get(i, ("", ""))[0] in ("uscc", "legal_rep_id_no")
            decided = day - timedelta(days=rng.randint(1, 60))
            category, certificate, content = rng.choice(kinds)
            row: dict[str, Any] = {
                "decision_no": f"{style.abbreviation}许〔{decided.year}〕{day:%m%d}{i + 1:0{width}d}号",
                "license_category": category, "certificate_name": certificate,
                "license_no": f"{department.code.upper()}{day:%Y%m%d}{i + 1:0{width}d}",
                "license_content": content, "decision_date": decided, "valid_from": decided,
                # some licences ran out already: they leave the publishable set (dbt: is_publishable)
                "valid_to": _add_years(decided, rng.choice((-1, 3, 5))) if rng.random() < 0.9 else None,
            }
            if row["valid_to"] is not None and row["valid_to"] < decided:
                row["decision_date"] = row["valid_from"] = _add_years(decided, -3)
            authority, authority_uscc = rng.choice(authorities)
            row.update(authority=authority, authority_uscc=authority_uscc)
            if needs_org or rng.random() < 0.9:
                org = rng.choice(city.enterprises)
                row.update(party_name=org.name, party_type=org.party_type, uscc=org.uscc,
                           legal_rep=org.legal_rep.name, legal_rep_id_no=org.legal_rep.id_number)
            else:
                person = rng.choice(city.residents)
                row.update(party_name=person.name, party_type="自然人", uscc="", legal_rep="", legal_rep_id_no="")
            rows.append(row)
    elif dataset == "credit_list":
        for i in range(n):
            kind, list_name, reason, authority = rng.choice(CREDIT_LISTS)
            listed = day - timedelta(days=rng.randint(1, 400))
            defect_field = defects.get(i, ("", ""))[0]
            person_ok = kind == "黑名单" and list_name == "失信被执行人"
            row = {"entry_no": f"XY{day:%Y%m%d}{i + 1:04d}", "list_kind": kind, "list_name": list_name,
                   "reason": reason, "listed_date": listed,
                   "valid_until": _add_years(listed, 3 if kind == "黑名单" else 1),
                   "removed_date": min(listed + timedelta(days=200), day) if rng.random() < 0.1 else None,
                   "listing_authority": authority}
            if defect_field == "id_number" or (person_ok and defect_field != "uscc" and rng.random() < 0.3):
                person = rng.choice(city.residents)
                row.update(subject_name=person.name, subject_type="自然人", uscc="", legal_rep="",
                           id_number=person.id_number)
            else:
                org = rng.choice(city.enterprises)
                row.update(subject_name=org.name, subject_type=org.party_type, uscc=org.uscc,
                           legal_rep=org.legal_rep.name, id_number="")
            rows.append(row)
    elif dataset == "household_registration":
        for person in _sample(rng, city.residents, n):
            rows.append({
                "id_number": person.id_number, "person_name": person.name, "sex": person.sex,
                "birth_date": person.birth_date, "ethnicity": rng.choice(ETHNICITIES),
                "region_code": person.region_code, "address": person.address,
                "household_kind": rng.choices(("家庭户", "集体户"), (9, 1))[0],
                "status": rng.choices(("正常", "迁出", "死亡注销"), (95, 4, 1))[0]})
    else:
        raise ValueError(f"the demo has no generator for dataset {dataset!r}")
    return rows



def _plan_register_defects(rng: random.Random, n: int, dataset: Dataset) -> dict[int, tuple[str, str]]:
    """Defects for a non-penalty dataset: one per rule the dataset declares, in turn.

    A key field is never blanked nor given a value outside its enum (that could also make a
    duplicate); a code's check character may change (the key stays unique).
    """
    usable: list[tuple[str, str]] = []
    for f in dataset.fields:
        usable += [(f.name, rule) for rule in f.rules]
    for f in dataset.fields:
        if f.type == "date" and f.required:
            usable.append((f.name, "date"))
            break
    for f in dataset.fields:
        if f.enum and f.name not in dataset.natural_key:
            usable.append((f.name, "enum"))
            break
    for f in dataset.fields:
        if f.type == "number":
            usable.append((f.name, "number"))
            break
    for f in dataset.fields:
        if f.required and not f.rules and not f.enum and f.type == "text" and f.name not in dataset.natural_key:
            usable.append((f.name, "required"))
            break
    bad_positions = sorted(rng.sample(range(n), round(n * BAD_ROW_SHARE)))
    return {pos: usable[k % len(usable)] for k, pos in enumerate(bad_positions)}


def _break(row: dict[str, Any], field: str, rule: str, rng: random.Random, style: _Style) -> None:
    """Give ``row`` the one defect (field, rule)."""
    value = row.get(field)
    if rule == "uscc":
        row[field] = value[:-1] + _wrong_char(rng, value[-1], _USCC_ALPHABET)
    elif rule == "id_number":
        row[field] = value[:-1] + _wrong_char(rng, value[-1], _RIC_CHECK_CHARS)
    elif rule == "org_code":
        row[field] = value[:-1] + _wrong_char(rng, value[-1], _ORG_CODE_CHECK_CHARS)
    elif rule == "mobile":
        row[field] = value[:-1]  # a digit short
    elif rule == "required":
        row[field] = ""
    elif rule == "date":
        year = value.year if isinstance(value, date) else 2026
        month, dom = rng.choice(((2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31)))
        row[field] = _BadDate(style.date_text(year, month, dom))
    elif rule == "enum":
        row[field] = "其他类型"
    elif rule == "number":
        row[field] = rng.choice(BAD_AMOUNTS).format(value if value is not None else 10)


def _generate_register(registry: Registry, source: Source, inbox_dir: Path, day: date, rows_per_source: int,
                       seed: int) -> SourceSubmission:
    """Write one non-penalty source's CSV (always CSV: these sources are plain exports) and describe it."""
    department = registry.departments[source.department]
    dataset = registry.dataset_of(source)
    style = _style_for(department, source)
    headers = list(source.columns)
    fields = [source.columns[h] for h in headers]
    rng = random.Random(_source_seed(seed, source.id, day))  # noqa: S311 - reproducible demo data, not secrets
    city = _city(seed, rows_per_source + CITY_POOL_MARGIN)
    defects = _plan_register_defects(rng, rows_per_source, dataset)
    rows = _register_rows(dataset.dataset, department, style, city, day, rows_per_source, rng, defects, seed)
    bad_rows = []
    for i, (field, rule) in sorted(defects.items()):
        _break(rows[i], field, rule, rng, style)
        key = "/".join(_csv_value(rows[i][k], style) for k in dataset.natural_key)
        bad_rows.append(BadRow(row=source.header_row + 1 + i, decision_no=key, defects=frozenset({(field, rule)})))
    folder = inbox_dir / source.id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{source.id}_{day:%Y%m%d}.{source.format}"
    _write_csv(path, source, style, _title(department, dataset.title, day), headers, fields, rows)
    return SourceSubmission(source_id=source.id, path=path, format=source.format, rows_written=len(rows),
                            first_data_row=source.header_row + 1, expected_quarantined=len(bad_rows),
                            bad_rows=tuple(bad_rows))
