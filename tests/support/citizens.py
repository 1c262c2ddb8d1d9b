"""Generated citizens' numbers for masking tests: valid IDs (python-stdnum's check digit) and mobiles,
written the ways departments write them."""

from __future__ import annotations

import re
from datetime import date, timedelta

from hypothesis import strategies as st
from stdnum.cn import ric

SEPARATORS = ("", " ", "-", "\u00a0", "\u3000")
#: GB 11643-1999's own published example resident ID (not a person's): the fixed number push tests send.
EXAMPLE_ID_NUMBER = "11010519491231002X"


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    """A valid 18-character resident ID (python-stdnum's check digit), X as upper or lower case."""
    region = draw(st.sampled_from(["110101", "110105", "110102", "310104"]))
    birth = date(1930, 1, 1) + timedelta(days=draw(st.integers(0, 30000)))  # these regions existed since 1930
    body = f"{region}{birth:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    number = body + ric.calc_check_digit(body + "0")  # it reads the 17 digits before the last place
    assert ric.is_valid(number)
    return number.lower() if draw(st.booleans()) else number


@st.composite
def written_ids(draw: st.DrawFn) -> tuple[str, str]:
    """(the ID, how it is written in a text): plain, or grouped 6-8-4 / 6-4-4-4 with one separator kind."""
    number = draw(id_numbers())
    sep = draw(st.sampled_from(SEPARATORS))
    groups = draw(st.sampled_from([(6, 8, 4), (6, 4, 4, 4), (3, 3, 4, 4, 4)]))
    parts, at = [], 0
    for size in groups:
        parts.append(number[at:at + size])
        at += size
    return number, sep.join(parts)


@st.composite
def written_mobiles(draw: st.DrawFn) -> tuple[str, str]:
    """(the 11-digit mobile, how it is written): plain, 3-4-4 grouped, with +86 / 86- / 86 in front."""
    number = f"1{draw(st.sampled_from('3456789'))}{draw(st.integers(0, 10**9 - 1)):09d}"
    sep = draw(st.sampled_from(SEPARATORS))
    body = sep.join([number[:3], number[3:7], number[7:]])
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "86-", "86", "(+86)"]))
    return number, prefix + body


# Arbitrary text around the number, but not digits or separators glued to it: those would make
# another, longer number, whose masking is tested separately.
around = st.text(max_size=30).map(lambda t: t.strip("0123456789０１２３４５６７８９ -\u00a0\u3000"))


def digits_of(text: str) -> str:
    """The text without the separators a number may be written with."""
    return re.sub(r"[- \u00a0\u3000]", "", text)
