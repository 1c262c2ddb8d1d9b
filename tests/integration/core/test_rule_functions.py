"""The validation rule functions in PostgreSQL (huiju/sql/010_rules.sql), checked against
python-stdnum's check-digit arithmetic and small pure-Python oracles kept here.

stdnum's ``uscc.validate`` is not used as the oracle: it rejects valid codes whose first
eight characters are not all digits (authorities A, N and Y), and it has no organisation
code check. Its ``calc_check_digit`` functions are the reference instead.
"""

from __future__ import annotations

import datetime
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from huiju.divisions import known_region_codes

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ORG_ALPHABET = string.digits + string.ascii_uppercase
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# Registration authority -> category codes the SQL accepts (see the comment in 010_rules.sql).
CATEGORIES = {a: "1239" for a in "12456789ANY"} | {"9": "123", "Y": "1", "3": "123459"}

# The functions are read-only, so sharing one connection across generated inputs is fine.
_SHARED_PG = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=_SHARED_PG)


# --- oracles -----------------------------------------------------------------------------

def org_check(body: str) -> str:
    """GB 11714 check character for the 8-character body of an organisation code."""
    total = sum(ORG_ALPHABET.index(ch) * w for ch, w in zip(body, ORG_WEIGHTS, strict=True))
    return {10: "X", 11: "0"}.get(11 - total % 11, str(11 - total % 11))


def make_uscc(authority: str, category: str, region: str, body: str) -> str:
    """A code with both check characters right (MOD 31 via stdnum)."""
    first17 = authority + category + region + body + org_check(body)
    return first17 + uscc.calc_check_digit(first17)


# The worked example published in GB 11643-1999 (and in python-stdnum's documentation of cn.ric).
PUBLISHED_ID = "11010519491231002X"
# The same example in the first-generation 15-digit form (2-digit year, no check digit).
PUBLISHED_LEGACY_ID = PUBLISHED_ID[:6] + PUBLISHED_ID[8:17]


def make_id(region: str, born: datetime.date, sequence: str) -> str:
    first17 = region + born.strftime("%Y%m%d") + sequence
    return first17 + ric.calc_check_digit(first17 + "0")  # stdnum wants the check slot present


def call(pg, function: str, values: list) -> list:
    """``ops.<function>`` over values in one query, results in input order."""
    rows = pg.execute(
        f"select ops.{function}(v) from unnest(%s::text[]) with ordinality as t(v, i) order by i",
        (values,),
    ).fetchall()
    return [row[0] for row in rows]


# --- unified social credit code ------------------------------------------------------------

VALID_USCC = [
    "91350100M000100Y43",  # the example the standard's guides use
    "91110000600037341L",
    make_uscc("9", "1", "110105", "MA01ABCD"),
    make_uscc("9", "2", "320581", "L1234567"),
    make_uscc("9", "3", "440300", "0012345X"),
    make_uscc("1", "1", "100000", "00001234"),
    make_uscc("1", "2", "330100", "47000312"),
    make_uscc("5", "3", "310000", "50003214"),
    make_uscc("A", "1", "000000", "MB0L2C1R"),
    make_uscc("N", "2", "511025", "MF1U3P8J"),
    make_uscc("Y", "1", "110000", "ME9W8Y7T"),
    make_uscc("3", "4", "110000", "E1234567"),
]


def test_uscc_valid_codes(pg):
    assert call(pg, "uscc_problem", VALID_USCC) == [None] * len(VALID_USCC)


def test_uscc_input_is_trimmed_and_upper_cased(pg):
    code = make_uscc("9", "1", "110105", "MA01ABCD")
    values = [f"  {code.lower()}\t", f"\u3000{code}\u3000", f"{code}\n"]
    assert call(pg, "uscc_problem", values) == [None, None, None]


def test_uscc_nothing_to_check(pg):
    assert call(pg, "uscc_problem", [None, "", "   ", "\u3000"]) == [None] * 4


def _swap_last(code: str) -> str:
    return code[:-1] + USCC_CHARSET[(USCC_CHARSET.index(code[-1]) + 1) % 31]


def _recheck(first17: str) -> str:
    return first17 + uscc.calc_check_digit(first17)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("91350100M000100Y4", "length"),
        ("91350100M000100Y433", "length"),
        ("91350100M0001 0Y43", "charset"),
        ("91350100MI00100Y43", "charset"),  # I is never used
        ("91350100MO00100Y43", "charset"),
        ("91350100M000100Y4Z", "charset"),
        ("913501００M000100Y43", "charset"),  # full-width digits
        ("91350100\\000100Y43", "charset"),
        (_recheck("B1350100" + "M000100Y"[:8] + "4"), "authority"),
        (_recheck("0" + "1350100M000100Y4"), "authority"),
        (make_uscc("9", "9", "350100", "M000100Y"), "category"),
        (make_uscc("Y", "2", "350100", "M000100Y"), "category"),
        (make_uscc("1", "4", "350100", "M000100Y"), "category"),
        (make_uscc("9", "1", "35010A", "M000100Y"), "region"),
        (make_uscc("9", "1", "X50100", "M000100Y"), "region"),
        (_recheck("91350100M000100Y5"), "org_code"),
        (_recheck("91350100M000100YA"), "org_code"),  # a letter other than X
        (_swap_last("91350100M000100Y43"), "check"),
        ("91350100M000100Y44", "check"),
    ],
)
def test_uscc_problem_codes(pg, value, problem):
    assert call(pg, "uscc_problem", [value]) == [problem]


def test_uscc_org_code_with_x_check(pg):
    body = next(b for b in (f"MA{n:06d}" for n in range(1000)) if org_check(b) == "X")
    assert call(pg, "uscc_problem", [make_uscc("9", "1", "110105", body)]) == [None]


uscc_prefixes = st.builds(
    lambda ac, region, body: ac + region + body + org_check(body),
    st.sampled_from([a + c for a, cs in CATEGORIES.items() for c in cs]),
    st.text(string.digits, min_size=6, max_size=6),
    st.text(USCC_CHARSET, min_size=8, max_size=8),
)


@HYPOTHESIS
@given(st.lists(uscc_prefixes, min_size=1, max_size=100))
def test_uscc_check_char_matches_stdnum(pg, prefixes):
    assert call(pg, "uscc_check_char", prefixes) == [uscc.calc_check_digit(p) for p in prefixes]
    assert call(pg, "uscc_problem", [p + uscc.calc_check_digit(p) for p in prefixes]) == [None] * len(
        prefixes
    )


def test_org_code_check_char_published_examples(pg):
    assert call(pg, "org_code_check_char", ["D2143569", "60003734", "6000373", "6000373-", None]) == [
        "X", "1", None, None, None,
    ]


@HYPOTHESIS
@given(st.lists(st.text(ORG_ALPHABET, min_size=8, max_size=8), min_size=1, max_size=100))
def test_org_code_check_char_matches_oracle(pg, bodies):
    assert call(pg, "org_code_check_char", bodies) == [org_check(b) for b in bodies]


@settings(max_examples=8, deadline=None, suppress_health_check=_SHARED_PG)
@given(uscc_prefixes)
def test_uscc_every_single_substitution_is_caught(pg, prefix):
    code = prefix + uscc.calc_check_digit(prefix)
    variants = [code[:i] + ch + code[i + 1 :] for i in range(18) for ch in USCC_CHARSET if ch != code[i]]
    problems = call(pg, "uscc_problem", variants)
    assert None not in problems


# --- resident identity card number ----------------------------------------------------------

def _id_with_x() -> str:
    return next(
        v for n in range(1000) if (v := make_id("110105", datetime.date(1990, 3, 7), f"{n:03d}"))[-1] == "X"
    )


def test_id_valid_numbers(pg):
    values = [
        make_id("110105", datetime.date(1949, 12, 31), "002"),
        make_id("440305", datetime.date(2000, 2, 29), "123"),  # 2000 is a leap year
        make_id("650102", datetime.date(1900, 1, 1), "001"),
        make_id("820000", datetime.date.today(), "001"),
        _id_with_x(),
        _id_with_x().lower(),
        PUBLISHED_ID,
        PUBLISHED_LEGACY_ID,
        f" {PUBLISHED_LEGACY_ID} ",
    ]
    assert call(pg, "id_number_problem", values) == [None] * len(values)


def test_id_legacy_flag(pg):
    values = [PUBLISHED_LEGACY_ID, PUBLISHED_ID, PUBLISHED_LEGACY_ID[:-1], None, "  "]
    assert call(pg, "id_number_is_legacy", values) == [True, False, False, None, None]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1.10101199003E+17", "numeric"),
        ("1.10101199003e+17", "numeric"),
        (make_id("110101", datetime.date(1990, 3, 7), "123") + ".0", "numeric"),
        ("1101011990030712", "format"),
        ("1101011990030712345", "format"),
        ("11010119900307123Y", "format"),
        ("1101011990030X1234", "format"),
        (PUBLISHED_LEGACY_ID[:-1] + "X", "format"),
        ("１１０１０５１９４９１２３１００２Ｘ", "format"),
        ("110105\\9491231002", "format"),
        (make_id("990105", datetime.date(1990, 3, 7), "123"), "region"),
        (make_id("100105", datetime.date(1990, 3, 7), "123"), "region"),
        ("990105491231002", "region"),
        (make_id("110199", datetime.date(1990, 3, 7), "123"), "region"),  # 北京 (11), but no division 110199
        ("110199491231002", "region"),
        ("11010519000229123" + ric.calc_check_digit("110105190002291230"), "birth_date"),  # 1900 no
        ("11010520230229123" + ric.calc_check_digit("110105202302291230"), "birth_date"),
        ("11010518991231123" + ric.calc_check_digit("110105189912311230"), "birth_date"),
        ("11010519901301123" + ric.calc_check_digit("110105199013011230"), "birth_date"),
        ("11010520990101123" + ric.calc_check_digit("110105209901011230"), "birth_date"),  # future
        ("110105491331002", "birth_date"),
        ("110105490230002", "birth_date"),
        (PUBLISHED_ID[:-1] + "1", "check"),  # the published example with a wrong check digit
        (PUBLISHED_ID[:-1] + "0", "check"),
    ],
)
def test_id_problem_codes(pg, value, problem):
    assert call(pg, "id_number_problem", [value]) == [problem]


def test_id_nothing_to_check(pg):
    assert call(pg, "id_number_problem", [None, "", " \t"]) == [None] * 3


def test_id_number_problem_is_stable_the_rest_immutable(pg):
    rows = dict(
        pg.execute(
            "select proname, provolatile::text || proparallel::text from pg_proc"
            " where pronamespace = 'ops'::regnamespace and prokind = 'f'"
            " and proname ~ '(_problem|^parse_|_is_legacy|_check_char)$'"
        ).fetchall()
    )
    assert rows.pop("id_number_problem") == "ss"
    assert set(rows.values()) == {"is"}, rows


# The region part is a code of the national division list (huiju.divisions), as the rule checks it.
REGION_CODES = sorted(known_region_codes())
id_prefixes = st.builds(
    lambda region, born, seq: region + born.strftime("%Y%m%d") + seq,
    st.sampled_from(REGION_CODES),
    st.dates(datetime.date(1900, 1, 1), datetime.date.today()),
    st.text(string.digits, min_size=3, max_size=3),
)


@HYPOTHESIS
@given(st.lists(st.text(string.digits, min_size=17, max_size=17), min_size=1, max_size=100))
def test_id_check_char_matches_stdnum(pg, prefixes):
    assert call(pg, "id_number_check_char", prefixes) == [ric.calc_check_digit(p + "0") for p in prefixes]


@HYPOTHESIS
@given(st.lists(id_prefixes, min_size=1, max_size=100))
def test_id_numbers_from_valid_parts_pass(pg, prefixes):
    values = [p + ric.calc_check_digit(p + "0") for p in prefixes]
    assert call(pg, "id_number_problem", values) == [None] * len(values)


@settings(max_examples=10, deadline=None, suppress_health_check=_SHARED_PG)
@given(id_prefixes)
def test_id_every_single_substitution_is_caught(pg, prefix):
    number = prefix + ric.calc_check_digit(prefix + "0")
    alphabet = string.digits + "X"
    variants = [
        number[:i] + ch + number[i + 1 :]
        for i in range(18)
        for ch in (alphabet if i == 17 else string.digits)
        if ch != number[i]
    ]
    assert None not in call(pg, "id_number_problem", variants)


# --- dates and numbers ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("2024-02-29", datetime.date(2024, 2, 29)),
        ("2024-2-9", datetime.date(2024, 2, 9)),
        ("2024/2/29", datetime.date(2024, 2, 29)),
        ("2024/12/01", datetime.date(2024, 12, 1)),
        ("2024.3.1", datetime.date(2024, 3, 1)),
        ("20240229", datetime.date(2024, 2, 29)),
        ("2024年2月29日", datetime.date(2024, 2, 29)),
        ("2024年12月1日", datetime.date(2024, 12, 1)),
        ("2000-02-29", datetime.date(2000, 2, 29)),
        ("0001-01-01", datetime.date(1, 1, 1)),
        ("9999-12-31", datetime.date(9999, 12, 31)),
        (" 2024-01-05\u3000", datetime.date(2024, 1, 5)),
    ],
)
def test_dates_accepted(pg, value, parsed):
    assert call(pg, "parse_date", [value]) == [parsed]
    assert call(pg, "date_problem", [value]) == [None]


@pytest.mark.parametrize(
    "value",
    [
        "2026-02-30", "2023-02-29", "1900-02-29", "2024-13-01", "2024-00-10", "2024-01-00",
        "0000-01-01", "2024-04-31", "abc", "2024", "2024-01", "2024-1-2-3", "2024-1/2", "2024/1-2",
        "2024-001-02", "24-01-02", "2024-01-02T00:00", "2024-01-02 10:00", "202402290",
        "2024年2月29", "2024年2-29日", "2024年02月30日", "2024-+1-02", "２０２４-01-01", "2024--1",
        "2024-1-", "2024-\\1-2", "1.7e9",
    ],
)
def test_dates_rejected_without_raising(pg, value):
    assert call(pg, "parse_date", [value]) == [None]
    assert call(pg, "date_problem", [value]) == ["date"]


def test_dates_nothing_to_check(pg):
    assert call(pg, "date_problem", [None, "", "  "]) == [None] * 3
    assert call(pg, "parse_date", [None, "", "  "]) == [None] * 3


@HYPOTHESIS
@given(st.lists(st.dates(datetime.date(1, 1, 1), datetime.date(9999, 12, 31)), min_size=1, max_size=50))
def test_dates_every_form_parses_to_the_same_day(pg, days):
    values = [
        form
        for d in days
        for form in (
            d.strftime("%Y-%m-%d").zfill(10),
            f"{d.year:04d}/{d.month}/{d.day}",
            f"{d.year:04d}.{d.month:02d}.{d.day}",
            f"{d.year:04d}{d.month:02d}{d.day:02d}",
            f"{d.year:04d}年{d.month}月{d.day}日",
        )
    ]
    assert call(pg, "parse_date", values) == [d for d in days for _ in range(5)]


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("0", "0"), ("42", "42"), ("-42", "-42"), ("+42", "42"), ("3.14", "3.14"), ("-0.5", "-0.5"),
        ("1,234", "1234"), ("12,345,678.90", "12345678.90"), ("-1,000", "-1000"), ("007", "7"),
        (" 15 ", "15"),
    ],
)
def test_numbers_accepted(pg, value, parsed):
    assert [str(v) for v in call(pg, "parse_number", [value])] == [parsed]
    assert call(pg, "number_problem", [value]) == [None]


@pytest.mark.parametrize(
    "value",
    [
        "abc", "1,5", "12,34", "1234,567", ",123", "1,234,", "1.2.3", ".5", "5.", "-", "+-5", "1e5",
        "1E+17", "NaN", "Infinity", "0x1F", "1 000", "１２", "12%", "¥12", "1,234.5,6", "--1",
    ],
)
def test_numbers_rejected_without_raising(pg, value):
    assert call(pg, "number_problem", [value]) == ["number"]
    assert call(pg, "parse_number", [value]) == [None]


def test_numbers_nothing_to_check(pg):
    assert call(pg, "number_problem", [None, "", "  "]) == [None] * 3
