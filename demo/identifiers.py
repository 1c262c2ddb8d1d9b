"""Identifiers with valid check characters (统一社会信用代码, 公民身份号码, 组织机构代码), and how to break one."""

from __future__ import annotations

import random
from datetime import date, timedelta
from functools import cache

from stdnum.cn import ric
from stdnum.cn import uscc as stdnum_uscc

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
RIC_CHECK_CHARS = "0123456789X"

# County codes the legal representatives' ID numbers are drawn from (several provinces:
# 11 北京, 31 上海, 44 广东, 51 四川, 32 江苏, 33 浙江, 42 湖北, 50 重庆). Which birth years
# each is valid for is read from stdnum's own table, so every good ID passes ric.validate.
_ID_REGION_CANDIDATES = (
    "110101", "110102", "110105", "110106", "110108", "310101", "310104", "310105", "310106",
    "310110", "440103", "440104", "440105", "440106", "510104", "510105", "510106", "510107",
    "320102", "320104", "330102", "330106", "420102", "420106", "500103", "500105",
)
_BIRTH_YEARS = (1950, 2000)


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


def wrong_char(rng: random.Random, good: str, alphabet: str) -> str:
    """A character of ``alphabet`` that is not ``good`` (so the check fails for certain)."""
    return alphabet[(alphabet.index(good) + rng.randrange(1, len(alphabet))) % len(alphabet)]
