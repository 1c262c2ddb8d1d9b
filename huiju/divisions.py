"""空间地理: the national administrative division list (GB/T 2260) the warehouse resolves regions against.

The list is python-stdnum's ``cn/loc.dat`` (a pinned dependency, the one the 公民身份号码 rule's
library already checks birth places with): every county-level code the Ministry of Civil Affairs
has published, each with the years it was in use, transcribed from the MCA's lists (its file header
names the pages it was taken from). Historical codes are kept: an ID number or a USCC issued under a
code since abolished still names a real division. The release the codes are from is the pinned
package's (``SOURCE``); ``python -m huiju.divisions`` writes the dbt seed
``dbt_project/seeds/basic_admin_division.csv`` from it, and a test fails when the seed and the pinned
package disagree, so a version bump shows up as a diff to review.

Divisions the national list does not hold but a deployment uses are in ``LOCAL_DIVISIONS`` (the demo
city: 3312 is a prefecture code Zhejiang never assigned).
"""

from __future__ import annotations

import csv
import io
import re
import sys
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

SOURCE = f"GB/T 2260 (python-stdnum {metadata.version('python-stdnum')} cn/loc.dat)"
LOCAL_SOURCE = "演示城市（非国家代码）"
SEED_COLUMNS = ("division_code", "division_name", "division_level", "parent_code", "in_use_from",
                "in_use_until", "is_current", "source")

# (code, name, level, parent): divisions a deployment uses that the national list lacks.
LOCAL_DIVISIONS: tuple[tuple[str, str, str, str], ...] = (
    ("331200", "示范市", "city", "330000"),
    ("331202", "江北区", "district", "331200"),
    ("331203", "江南区", "district", "331200"),
    ("331204", "高新区", "district", "331200"),
)

_ENTRY = re.compile(r'^\s+(\d{4}) county="(.+)"$')
_NAME = re.compile(r"^(?:\[(\d{4})?-(\d{4})?\])?(.+)$")  # one name of a code: "[1994-2017]玉环县"
_PROVINCE = re.compile(r'^(\d{2}) province="(.+)"$')


@dataclass(frozen=True)
class Division:
    """One GB/T 2260 code with the name it had last, its level, its parent and the years it was in use."""

    code: str
    name: str
    level: str  # province / city / district
    parent_code: str | None
    in_use_from: int | None
    in_use_until: int | None  # None: still in use
    source: str

    @property
    def is_current(self) -> bool:
        return self.in_use_until is None


def _level(code: str) -> str:
    if code.endswith("0000"):
        return "province"
    return "city" if code.endswith("00") else "district"


def national_divisions() -> list[Division]:
    """Every code in the pinned python-stdnum's list, one row per code: its latest name (current first)."""
    text = resources.files("stdnum.cn").joinpath("loc.dat").read_text(encoding="utf-8")
    entries: dict[str, tuple[str, int | None, int | None]] = {}
    province = ""
    for line in text.splitlines():
        if match := _PROVINCE.match(line):
            province = match.group(1)
            continue
        match = _ENTRY.match(line)
        if not match or not province:
            continue
        code = province + match.group(1)
        for name in match.group(2).split(","):  # a code renamed over time lists each name with its years
            parts = _NAME.match(name)
            if not parts:
                continue
            start, end = (int(year) if year else None for year in parts.group(1, 2))
            known = entries.get(code)
            # The name in use now wins; otherwise the one in use latest.
            if known is None or (known[2] is not None and (end is None or end > known[2])):
                entries[code] = (parts.group(3), start, end)
    divisions = []
    for code, (name, start, end) in sorted(entries.items()):
        level = _level(code)
        if level == "province":
            parent = None
        elif level == "city" or code[:4] + "00" not in entries:
            parent = code[:2] + "0000"
        else:
            parent = code[:4] + "00"
        divisions.append(Division(code, name, level, parent, start, end, SOURCE))
    return divisions


def all_divisions() -> list[Division]:
    """The national list and the deployment's own divisions (``LOCAL_DIVISIONS``), by code."""
    national = {d.code: d for d in national_divisions()}
    for code, name, level, parent in LOCAL_DIVISIONS:
        national.setdefault(code, Division(code, name, level, parent, None, None, LOCAL_SOURCE))
    return [national[code] for code in sorted(national)]


def seed_csv() -> str:
    """The text of the dbt seed ``basic_admin_division.csv``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SEED_COLUMNS)
    for d in all_divisions():
        writer.writerow((d.code, d.name, d.level, d.parent_code or "", d.in_use_from or "", d.in_use_until or "",
                         str(d.is_current).lower(), d.source))
    return out.getvalue()


def seed_path() -> Path:
    """Where the seed lives in the dbt project."""
    from huiju.settings import get_settings  # why: the list itself needs no settings

    return get_settings().home / "dbt_project" / "seeds" / "basic_admin_division.csv"


def known_region_codes() -> frozenset[str]:
    """Every code of :func:`all_divisions` (the 公民身份号码 rule's region check reads the same list)."""
    return frozenset(d.code for d in all_divisions())


def main() -> int:
    """``python -m huiju.divisions``: write the seed from the pinned package."""
    path = seed_path()
    path.write_text(seed_csv(), encoding="utf-8")
    print(f"{path}: {len(all_divisions())} divisions from {SOURCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
