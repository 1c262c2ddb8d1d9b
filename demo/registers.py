"""The demo's other datasets — registers, licences, lists — drawn from one demo city."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from faker import Faker
from huiju_demo import departments, identifiers
from huiju_demo.manifest import BadRow, SourceSubmission
from huiju_demo.penalties import BAD_AMOUNTS, BAD_ROW_SHARE, SHOP_KINDS, authority_codes

from huiju.registry import Dataset, Department, Registry, Source

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
        return f"{departments.CITY}{district}{faker.street_name()}{rng.randint(1, 300)}号"

    residents = []
    seen_ids: set[str] = set()
    while len(residents) < size:
        district, region = rng.choice(departments.DISTRICTS)
        id_number = identifiers.make_id_number(rng)
        if id_number not in seen_ids:
            seen_ids.add(id_number)
            residents.append(_Resident(faker.name(), id_number, region, address(district)))

    def capital() -> Decimal:
        return Decimal(rng.choice((3, 5, 10, 50, 100, 200, 500, 1000, 5000)))

    def established() -> date:
        return date(2026, 1, 1) - timedelta(days=rng.randint(30, 365 * 20))

    enterprises = []
    for index in range(size):
        district, region = rng.choice(departments.DISTRICTS)
        kind = rng.choices(ENTERPRISE_TYPES, ENTERPRISE_TYPE_WEIGHTS)[0]
        rep = residents[(index * 7) % size]
        if kind == "个体工商户":
            name = f"{departments.CITY}{district}{rep.name[0]}记{rng.choice(SHOP_KINDS)}"
            uscc = identifiers.make_uscc(rng, "9", "2", region)
        else:
            company = faker.company()
            name = f"{departments.CITY}{company}" if rng.random() < 0.4 else company
            uscc = identifiers.make_uscc(rng, "9", "1", region)
        enterprises.append(_Organisation(uscc, name, kind, rep, capital(), established(), region, address(district)))

    social_orgs = []
    for index in range(size):
        district, region = rng.choice(departments.DISTRICTS)
        kind = SOCIAL_ORG_TYPES[index % 3]
        template = SOCIAL_ORG_NAMES[3] if kind == "基金会" else rng.choice(SOCIAL_ORG_NAMES[:3])
        # Names repeat across trades and districts: the serial keeps each organisation's name its own.
        name = template.format(city=departments.CITY, trade=rng.choice(TRADES), district=district) + f"（{index + 1}）"
        category = {"社会团体": "1", "民办非企业单位": "2", "基金会": "3"}[kind]
        social_orgs.append(_Organisation(identifiers.make_uscc(rng, "5", category, region), name, kind,
                                         residents[(index * 11 + 3) % size], Decimal(rng.choice((3, 10, 200, 800))),
                                         established(), region, address(district)))
    return _City(tuple(residents), tuple(enterprises), tuple(social_orgs))


#: 国民经济行业分类 (GB/T 4754-2017) classes a demo enterprise is registered in (门类 letter + class).
DEMO_INDUSTRIES = ("C1391", "C3511", "E4790", "F5137", "F5261", "G5431", "H6110", "I6513", "K7020", "L7212",
                   "M7320", "O8010")


def industry_code_of(uscc: str) -> str:
    """A demo enterprise's industry: fixed by its USCC (not drawn from the day's random stream)."""
    return DEMO_INDUSTRIES[zlib.crc32(uscc.encode()) % len(DEMO_INDUSTRIES)]


def _sample(rng: random.Random, items: tuple[Any, ...], n: int) -> list[Any]:
    return rng.sample(items, min(n, len(items)))


def _register_rows(dataset: str, department: Department, style: departments.Style, city: _City, day: date, n: int,
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
                "authority": style.authorities[0][0], "industry_code": industry_code_of(org.uscc)})
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
                "supervisor": "" if org.kind == "社会团体" else f"{departments.CITY}教育局",
                "authority": f"{departments.CITY}民政局"})
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
        authorities = authority_codes(style, seed)  # the same codes as on the department's penalties
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
                "valid_to": departments.add_years(decided, rng.choice((-1, 3, 5))) if rng.random() < 0.9 else None,
            }
            if row["valid_to"] is not None and row["valid_to"] < decided:
                row["decision_date"] = row["valid_from"] = departments.add_years(decided, -3)
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
                   "valid_until": departments.add_years(listed, 3 if kind == "黑名单" else 1),
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


def _break(row: dict[str, Any], field: str, rule: str, rng: random.Random, style: departments.Style) -> None:
    """Give ``row`` the one defect (field, rule)."""
    value = row.get(field)
    if rule == "uscc":
        row[field] = value[:-1] + identifiers.wrong_char(rng, value[-1], identifiers.USCC_ALPHABET)
    elif rule == "id_number":
        row[field] = value[:-1] + identifiers.wrong_char(rng, value[-1], identifiers.RIC_CHECK_CHARS)
    elif rule == "org_code":
        row[field] = value[:-1] + identifiers.wrong_char(rng, value[-1], _ORG_CODE_CHECK_CHARS)
    elif rule == "mobile":
        row[field] = value[:-1]  # a digit short
    elif rule == "required":
        row[field] = ""
    elif rule == "date":
        year = value.year if isinstance(value, date) else 2026
        month, dom = rng.choice(((2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31)))
        row[field] = departments.BadDate(style.date_text(year, month, dom))
    elif rule == "enum":
        row[field] = "其他类型"
    elif rule == "number":
        row[field] = rng.choice(BAD_AMOUNTS).format(value if value is not None else 10)


def _register_plan(registry: Registry, source: Source, day: date, rows_per_source: int,
                   seed: int) -> tuple[departments.Style, list[dict[str, Any]], list[tuple[int, str, tuple[str, str]]]]:
    """A non-penalty source's rows of ``day`` with their defects made: (its style, the rows, and per bad row its
    index, natural key as the department writes it and (field, rule))."""
    department = registry.departments[source.department]
    dataset = registry.dataset_of(source)
    style = departments.style_for(department, source)
    rng = random.Random(departments.source_seed(seed, source.id, day))  # noqa: S311 - reproducible demo data, not secrets
    city = _city(seed, rows_per_source + CITY_POOL_MARGIN)
    defects = _plan_register_defects(rng, rows_per_source, dataset)
    rows = _register_rows(dataset.dataset, department, style, city, day, rows_per_source, rng, defects, seed)
    bad = []
    for i, (field, rule) in sorted(defects.items()):
        _break(rows[i], field, rule, rng, style)
        bad.append((i, "/".join(departments.csv_value(rows[i][k], style) for k in dataset.natural_key), (field, rule)))
    return style, rows, bad


def generate_register_file(registry: Registry, source: Source, inbox_dir: Path, day: date, rows_per_source: int,
                           seed: int) -> SourceSubmission:
    """Write one non-penalty source's CSV (always CSV: these sources are plain exports) and describe it."""
    department = registry.departments[source.department]
    dataset = registry.dataset_of(source)
    headers = list(source.columns)
    fields = [source.columns[h] for h in headers]
    style, rows, bad = _register_plan(registry, source, day, rows_per_source, seed)
    bad_rows = [BadRow(row=source.header_row + 1 + i, decision_no=key, defects=frozenset({defect}))
                for i, key, defect in bad]
    folder = inbox_dir / source.id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{source.id}_{day:%Y%m%d}.{source.format}"
    title = departments.file_title(department, dataset.title, day)
    departments.write_csv(path, source, style, title, headers, fields, rows)
    return SourceSubmission(source_id=source.id, path=path, format=source.format, rows_written=len(rows),
                            first_data_row=source.header_row + 1, expected_quarantined=len(bad_rows),
                            bad_rows=tuple(bad_rows))


def generate_register_records(registry: Registry, source: Source, day: date, *, rows: int = 200,
                              seed: int = 20261120) -> tuple[list[dict[str, str]], SourceSubmission]:
    """A non-penalty source's demo rows as records (keyed by its own column names, values as text in the
    department's style), for a source that serves records, not files (the province's licence backflow): the
    rows its file would hold, the same defects; row numbers are 1-based positions in the list."""
    style, rows, bad = _register_plan(registry, source, day, rows, seed)
    records = [{header: departments.csv_value(row.get(field), style) for header, field in source.columns.items()}
               for row in rows]
    bad_rows = tuple(BadRow(row=i + 1, decision_no=key, defects=frozenset({defect})) for i, key, defect in bad)
    return records, SourceSubmission(source_id=source.id, path=None, format="records", rows_written=len(records),
                                     first_data_row=1, expected_quarantined=len(bad_rows), bad_rows=bad_rows)
