"""The demo's 行政处罚 (administrative penalties): rows as each department writes them, a known few defective.

Exactly ``round(rows * 0.04)`` rows of a source carry one deliberate defect each, from
:data:`DEFECTS` in turn; every other row passes all of :data:`RULES`.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from faker import Faker
from huiju_demo.departments import (
    CITY,
    DISTRICTS,
    BadDate,
    Style,
    add_years,
    csv_value,
    file_title,
    source_seed,
    style_for,
    write_csv,
    write_xlsx,
)
from huiju_demo.identifiers import RIC_CHECK_CHARS, USCC_ALPHABET, make_id_number, make_uscc, wrong_char
from huiju_demo.manifest import BadRow, SourceSubmission

from huiju.registry import Department, Registry, Source

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



def authority_codes(style: Style, seed: int) -> list[tuple[str, str]]:
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


def _make_rows(style: Style, day: date, n: int, seed: int, rng: random.Random, faker: Faker,
               defects: dict[int, tuple[str, str]]) -> Iterator[dict[str, Any]]:
    """``n`` rows as field → value (dates as ``date``, fines as ``Decimal``), made as they are written.

    A generator, so 100,000-row files never sit in memory.
    """
    authorities = authority_codes(style, seed)

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
            "publish_until": add_years(decided, 3),
            "authority": authority,
            "authority_uscc": authority_uscc,
        }
        if rule == "uscc":
            row["uscc"] = party.uscc[:-1] + wrong_char(rng, party.uscc[-1], USCC_ALPHABET)
        elif rule == "id_number":
            row["legal_rep_id_no"] = party.rep_id[:-1] + wrong_char(rng, party.rep_id[-1], RIC_CHECK_CHARS)
        elif rule == "required":
            row["party_name"] = ""
        elif rule == "date":
            month, dom = rng.choice(((2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31)))
            row["decision_date"] = BadDate(style.date_text(decided.year, month, dom))
        elif rule == "enum":
            row["party_type"] = rng.choice(BAD_PARTY_TYPES)
        elif rule == "number":
            row["fine_amount_wan"] = rng.choice(BAD_AMOUNTS).format(fine)
        yield row


# --- writers -------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What a source's rows of a day are drawn with: its department's style, its columns, its seeded randomness."""

    department: Department
    style: Style
    headers: list[str]
    fields: list[str]
    rng: random.Random
    faker: Faker
    defects: dict[int, tuple[str, str]]


def _plan(registry: Registry, source: Source, day: date, rows: int, seed: int) -> _Plan:
    department = registry.departments[source.department]
    headers = list(source.columns)
    fields = [source.columns[h] for h in headers]
    seeded = source_seed(seed, source.id, day)
    faker = Faker("zh_CN")
    faker.seed_instance(seeded)
    rng = random.Random(seeded)  # noqa: S311 - reproducible demo data, not secrets
    return _Plan(department, style_for(department, source), headers, fields, rng, faker,
                 _plan_defects(rng, rows, fields))


def generate_penalty_file(registry: Registry, source: Source, inbox_dir: Path, day: date, rows_per_source: int,
                  seed: int) -> SourceSubmission:
    """Write one source's file and describe it."""
    plan = _plan(registry, source, day, rows_per_source, seed)
    department, style, headers, fields, defects = plan.department, plan.style, plan.headers, plan.fields, plan.defects
    dataset = registry.dataset_of(source)
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

    rows = tally(_make_rows(style, day, rows_per_source, seed, plan.rng, plan.faker, defects))
    folder = inbox_dir / source.id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{source.id}_{day:%Y%m%d}.{source.format}"
    title = file_title(department, dataset.title, day)
    if source.format == "csv":
        write_csv(path, source, style, title, headers, fields, rows)
    else:
        write_xlsx(path, source, department, title, headers, fields, rows, source.sheet or dataset.title)

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
    plan = _plan(registry, source, day, rows, seed)
    style, headers, fields, defects = plan.style, plan.headers, plan.fields, plan.defects
    records: list[dict[str, str]] = []
    bad: list[BadRow] = []
    for i, row in enumerate(_make_rows(style, day, rows, seed, plan.rng, plan.faker, defects)):
        records.append({header: csv_value(row.get(field), style) for header, field in zip(headers, fields,
                                                                                            strict=True)})
        if i in defects:
            bad.append(BadRow(row=i + 1, decision_no=row["decision_no"], defects=frozenset({defects[i]})))
    described = SourceSubmission(source_id=source.id, path=None, format="records", rows_written=len(records),
                                 first_data_row=1, expected_quarantined=len(bad), bad_rows=tuple(bad))
    return records, described
