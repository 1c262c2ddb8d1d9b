"""huiju.masking: every ID and mobile number hidden wherever it sits in a text (hypothesis over generated numbers)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huiju.masking import MaskedError, install_log_masking, mask_exception, mask_text, mask_value, masked_errors
from tests.support.citizens import around, digits_of, id_numbers, written_ids, written_mobiles

# 11010519491231002X is GB 11643-1999's own example ID number (a published test vector, no citizen's).


@settings(max_examples=300, deadline=None)
@given(written_ids(), around, around)
def test_an_id_anywhere_in_a_text_loses_its_birth_date_and_sequence(written: tuple[str, str], before: str,
                                                                     after: str) -> None:
    number, text = written
    masked = mask_text(before + text + after)
    assert number not in digits_of(masked)
    assert number[6:14] not in digits_of(masked)  # the birth date
    assert masked.startswith(before) and masked.endswith(after)
    assert "********" in digits_of(masked)


@settings(max_examples=300, deadline=None)
@given(written_mobiles(), around, around)
def test_a_mobile_anywhere_in_a_text_loses_its_middle(written: tuple[str, str], before: str, after: str) -> None:
    number, text = written
    masked = mask_text(before + text + after)
    assert number not in digits_of(masked)
    assert number[3:7] not in digits_of(masked).replace(number[:3], "", 1).replace(number[7:], "")
    assert masked.startswith(before) and masked.endswith(after)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20), id_numbers(), st.text(max_size=20))
def test_even_digits_glued_to_an_id_do_not_leave_it_whole(before: str, number: str, after: str) -> None:
    assert number not in digits_of(mask_text(before + number + after))


@pytest.mark.parametrize(("text", "expected"), [
    ("身份证11010519491231002X号", "身份证110105********002X号"),
    ("id=11010519491231002x;", "id=110105********002x;"),
    ("110105 19491231 002X", "110105 ******** 002X"),
    ("110105-1949-1231-002X", "110105-****-****-002X"),
    ("电话+86 139 1234 5678", "电话+86 139 **** 5678"),
    ("电话86-13912345678", "电话86-139****5678"),
    ("电话+8613912345678。", "电话+86139****5678。"),
    ("tel13912345678abc", "tel139****5678abc"),
    ("110105491231002", "110105*****1002"),  # a 15-digit ID of the first generation
])
def test_the_forms_seen_in_departments_files(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize("text", [
    "决定书〔2026〕12号", "第 12 行，第 3 列", "2026-03-01", "金额 1234567.89 万元", "row 1048576", "0571-87654321",
    "swj_penalty-abababababababab", "",
])
def test_what_is_no_id_or_mobile_stays(text: str) -> None:
    assert mask_text(text) == text


def test_nested_values_and_exceptions_are_masked() -> None:
    assert mask_value({"k": ["13912345678", 3]}) == {"k": ["139****5678", 3]}
    assert mask_exception(ValueError("bad 11010519491231002X")) == "ValueError: bad 110105********002X"


def test_masked_errors_drop_the_original_and_keep_retryable() -> None:
    class Refused(Exception):
        retryable = False

    with pytest.raises(MaskedError) as raised, masked_errors():
        raise Refused("key 13912345678")
    assert str(raised.value) == "Refused: key 139****5678"
    assert raised.value.retryable is False
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_platform_log_records_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    install_log_masking()
    install_log_masking()  # idempotent
    with caplog.at_level(logging.INFO):
        logging.getLogger("huiju.test").info("header was %s", "张三,11010519491231002X,13912345678")
        logging.getLogger("elsewhere").info("untouched %s", "13912345678")
    assert "110105********002X,139****5678" in caplog.records[0].getMessage()
    assert "13912345678" in caplog.records[1].getMessage()
