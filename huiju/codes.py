"""National code lists (国家代码表): a value sent as a code, decoded to its name; the credit layer's seeds.

The 双公示 items 行政相对人类别, 处罚类别 and 许可类别 have national codes, declared once in
``config/item_sets/codes/<field>.yaml`` (:class:`huiju.registry.CodeList`). A department sends names
(罚款); the province's backflow, under a 双公示 item set, may send codes instead (``3``, ``03``; a
处罚类别 cell with several kinds, ``01;03``). :func:`decode` turns such a value into the names the
field's ``enum`` allows, part by part; landing applies it to every source that delivers under an item
set (:mod:`huiju.landing.codes`), so validation, staging and the credit models see names only.

The credit models go the other way (name → code, for the push targets' ``CF_XDR_LB``/``CF_CFLB``/
``XK_XKLB``) through dbt seeds ``code_<field>.csv``; ``python -m huiju.codes`` writes them from the same
files, and a test fails when a seed and its code list disagree.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from huiju.registry import CodeList, load_registry


@dataclass(frozen=True)
class Decoded:
    """A value with its codes replaced by their names; ``unknown``: the parts that are codes of no name."""

    value: str
    unknown: tuple[str, ...] = ()


def is_code(text: str) -> bool:
    """Whether ``text`` (one value, or one part of a multi-valued cell) is a code: ASCII digits only."""
    stripped = text.strip()
    return stripped.isascii() and stripped.isdigit()


def decode(code_list: CodeList, value: str, separator: str | None = None) -> Decoded | None:
    """``value`` with every part that is a code (``1``, ``01``) replaced by its name; None when no part is a code.

    ``separator`` splits a cell holding several values (处罚类别: ``01;03`` → ``警告;罚款``); parts that are
    names stay as they are. A code the list does not hold stays as sent and is named in ``unknown``.
    """
    parts = value.split(separator) if separator else [value]
    if not any(is_code(part) for part in parts):
        return None
    decoded, unknown = [], []
    for part in parts:
        if not is_code(part):
            decoded.append(part)
            continue
        name = code_list.by_number.get(int(part.strip()))
        if name is None:
            unknown.append(part.strip())
            decoded.append(part)
        else:
            decoded.append(name)
    return Decoded((separator or "").join(decoded), tuple(unknown))


def seed_name(code_list: CodeList) -> str:
    """The dbt seed of ``code_list``: ``code_<field>``, columns ``<field>_code`` and ``<field>``."""
    return f"code_{code_list.code_list}"


def seed_csv(code_list: CodeList) -> str:
    """The text of the dbt seed of ``code_list`` (codes as declared, in their order)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((f"{code_list.code_list}_code", code_list.code_list))
    writer.writerows(code_list.codes.items())
    return out.getvalue()


def seed_path(code_list: CodeList) -> Path:
    """Where the seed of ``code_list`` lives in the dbt project."""
    from huiju.settings import get_settings  # why: decoding needs no settings

    return get_settings().home / "dbt_project" / "seeds" / f"{seed_name(code_list)}.csv"


def main() -> int:
    """``python -m huiju.codes``: write the dbt seeds from ``config/item_sets/codes/``."""
    for code_list in load_registry().code_lists.values():
        path = seed_path(code_list)
        path.write_text(seed_csv(code_list), encoding="utf-8")
        print(f"{path}: {len(code_list.codes)} codes ({code_list.title})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
