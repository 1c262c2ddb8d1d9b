"""The rule pack added for issue 6 (huiju/sql/040_feedback.sql): organisation codes, mobile
numbers, normalisation and Chinese date forms, with test vectors and property tests.

python-stdnum has no organisation-code (GB 11714) module, so the oracle is the demo
generator's own arithmetic (``huiju_demo.generate.org_code_check_char``), written from the
standard independently of the SQL.
"""

from __future__ import annotations

import datetime
import string

import psycopg
import pytest
from huiju_demo.generate import org_code_check_char
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ORG_ALPHABET = string.digits + string.ascii_uppercase


@pytest.fixture(scope="module")
def db(pg_url: str):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


def one(conn: psycopg.Connection, expression: str, *args: object) -> object:
    return conn.execute(f"select {expression}", args).fetchone()[0]


@pytest.mark.parametrize(("code", "problem"), [
    ("D2143569-X", None),       # the textbook example (GB 11714 annex), hyphen as printed on certificates
    ("D2143569X", None),
    ("ｄ２１４３５６９－Ｘ", None),  # full-width and lower case: normalised, same code
    ("000000019", None),
    ("12345678-8", None),
    ("12345678-9", "check"),
    ("D2143569-1", "check"),
    ("D214356", "length"),
    ("D2143569-XX", "length"),
    ("D21435*9-X", "charset"),
    ("", None),
    (None, None),
])
def test_org_code_vectors(db: psycopg.Connection, code: str | None, problem: str | None) -> None:
    assert one(db, "ops.org_code_problem(%s)", code) == problem


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(alphabet=ORG_ALPHABET, min_size=8, max_size=8), hyphen=st.booleans())
def test_org_code_check_matches_the_reference(db: psycopg.Connection, body: str, hyphen: bool) -> None:
    check = org_code_check_char(body)
    code = body + ("-" if hyphen else "") + check
    assert one(db, "ops.org_code_problem(%s)", code) is None
    wrong = next(c for c in "0123456789X" if c != check)
    assert one(db, "ops.org_code_problem(%s)", body + wrong) == "check"


@pytest.mark.parametrize(("value", "problem"), [
    ("13800000001", None),
    ("19912345678", None),
    ("+86 138-0000-0001", None),
    ("8613800000001", None),
    ("１３８００００００01", None),  # full-width digits
    ("12800000001", "prefix"),
    ("23800000001", "prefix"),
    ("1380000000", "format"),
    ("138000000012", "format"),
    ("1380000000a", "format"),
    ("1.38E+10", "numeric"),
    ("13800000001.0", "numeric"),
    ("  ", None),
])
def test_mobile_vectors(db: psycopg.Connection, value: str, problem: str | None) -> None:
    assert one(db, "ops.mobile_problem(%s)", value) == problem


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_every_mainland_mobile_shape_passes(db: psycopg.Connection, number: str) -> None:
    assert one(db, "ops.mobile_problem(%s)", number) is None


@pytest.mark.parametrize(("value", "epoch", "expected", "problem"), [
    ("2026-03-05", None, datetime.date(2026, 3, 5), None),
    ("2026/3/5", None, datetime.date(2026, 3, 5), None),
    ("2026年3月5日", None, datetime.date(2026, 3, 5), None),
    ("２０２６年３月５日", None, datetime.date(2026, 3, 5), None),   # full-width digits, NFKC
    (" 2026.03.05　", None, datetime.date(2026, 3, 5), None),      # ideographic space trimmed
    ("46086", "1899-12-30", datetime.date(2026, 3, 5), None),     # Excel serial, 1900 date system
    ("44624", "1904-01-01", datetime.date(2026, 3, 5), None),     # the same day in the 1904 system
    ("46086", None, None, "serial"),                              # a number from a CSV: no epoch to read it with
    ("3/5/2026", None, None, "ambiguous"),                        # 3 May or 5 March: not guessed
    ("26-3-5", None, None, "ambiguous"),                          # two-digit year
    ("2026-02-30", None, None, "date"),
    ("明天", None, None, "date"),
])
def test_chinese_date_forms(db: psycopg.Connection, value: str, epoch: str | None,
                            expected: datetime.date | None, problem: str | None) -> None:
    assert one(db, "ops.parse_date_cn(%s, %s::date)", value, epoch) == expected
    assert one(db, "ops.date_problem_cn(%s, %s::date)", value, epoch) == problem


@pytest.mark.parametrize(("value", "text", "code"), [
    ("ＡＢＣ１２３", "ABC123", "ABC123"),
    (" 91ab　", "91ab", "91AB"),
    ("罚款（万元）", "罚款(万元)", "罚款(万元)"),
    ("", None, None),
])
def test_normalisation_is_nfkc_trim_and_upper_for_codes(db: psycopg.Connection, value: str, text: str | None,
                                                         code: str | None) -> None:
    assert one(db, "ops.normalise_text(%s)", value) == text
    assert one(db, "ops.normalise_code(%s)", value) == code
