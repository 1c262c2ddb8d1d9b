"""ops.mask_text (huiju/sql/150_mask_text.sql) hides what huiju.masking.mask_text hides; quarantine uses it."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from huiju.masking import mask_text
from tests.support.citizens import around, digits_of, written_ids, written_mobiles

# 11010519491231002X is GB 11643-1999's own example ID number (a published test vector, no citizen's).

sql_around = around.map(lambda t: t.replace("\x00", ""))  # text columns cannot hold NUL

_SHARED_PG = settings(max_examples=60, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _sql_mask(pg: psycopg.Connection, text: str) -> str:
    return pg.execute("select ops.mask_text(%s)", (text,)).fetchone()[0]


@_SHARED_PG
@given(written_ids(), sql_around, sql_around)
def test_ids_in_free_text_are_masked_in_sql(pg: psycopg.Connection, written: tuple[str, str], before: str,
                                            after: str) -> None:
    number, text = written
    masked = _sql_mask(pg, before + text + after)
    assert number[6:14] not in digits_of(masked)
    assert masked.startswith(before) and masked.endswith(after)


@_SHARED_PG
@given(written_mobiles(), sql_around, sql_around)
def test_mobiles_in_free_text_are_masked_in_sql(pg: psycopg.Connection, written: tuple[str, str], before: str,
                                                after: str) -> None:
    number, text = written
    assert number not in digits_of(_sql_mask(pg, before + text + after))


@pytest.mark.parametrize("text", ["身份证11010519491231002X号", "电话+86 139 1234 5678", "tel13912345678abc",
                                  "110105491231002", "决定书〔2026〕12号", "2026-03-01", ""])
def test_sql_and_python_agree_on_the_common_forms(pg: psycopg.Connection, text: str) -> None:
    assert digits_of(_sql_mask(pg, text)).replace("*", "") == digits_of(mask_text(text)).replace("*", "")
