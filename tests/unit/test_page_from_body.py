"""A REST page's records rendered from its JSON body by the landing process: exactly the fetcher's records.

The fetcher leaves a page's records in its body; the landing process decodes them again, plain
pages straight into value tuples. Whatever the body, the COPY text must be what the records the
connector decoded would give.
"""

from __future__ import annotations

import json

import pytest
from huiju_connectors.rest import Page, decode_json, records_at
from hypothesis import given, settings
from hypothesis import strategies as st

from huiju.channels._webservice import _Prepared, _render_from_body
from huiju.landing import RecordBatch, prepare_rows
from huiju.registry import load_registry

KEYS = ["name", "code", "amount"]
SOURCE = load_registry().source("jtj_penalty").model_copy(update={"columns": {key: key for key in KEYS}})

values = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from("ab中文\\\t\n\r N0\"\u2028"), max_size=6),
    st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.sampled_from("xy"), st.integers(), max_size=2),
)
plain_records = st.fixed_dictionaries({key: st.one_of(st.none(), st.text(max_size=5)) for key in KEYS})
records = st.one_of(plain_records, st.dictionaries(st.sampled_from([*KEYS, "extra"]), values, min_size=1))


def body_of(page: list[dict], path: str, *, ensure_ascii: bool) -> bytes:
    holder: object = page
    for step in reversed([s for s in path.removeprefix("$.").split(".") if s and s != "$"]):
        holder = {"code": 0, step: holder}
    return json.dumps(holder, ensure_ascii=ensure_ascii).encode("utf-8")


def prepared(body: bytes, count: int, path: str, first_row_no: int) -> _Prepared:
    page = Page("/api?page=2", [], {"v": 1, "position": None}, body, fetched_count=count)
    return _Prepared(page, "content-id", "sha", first_row_no, first_row_no + count - 1, render_from=path)


def connector_rows(body: bytes, path: str, first_row_no: int) -> object:
    """What the fetcher would have rendered from the records the connector decoded."""
    batch = RecordBatch("/api?page=2", "content-id", records_at(decode_json(body), path), first_row_no=first_row_no)
    return prepare_rows(SOURCE, batch)


@settings(max_examples=300, deadline=None)
@given(page=st.lists(records, min_size=1, max_size=6), path=st.sampled_from(["", "data", "data.list", "$.data"]),
       first_row_no=st.integers(1, 10_000), ensure_ascii=st.booleans())
def test_any_page_renders_as_the_connectors_records(page: list[dict], path: str, first_row_no: int,
                                                     ensure_ascii: bool) -> None:
    body = body_of(page, path, ensure_ascii=ensure_ascii)
    rendered = _render_from_body(SOURCE, prepared(body, len(page), path, first_row_no))
    assert rendered.render_from is None
    assert rendered.rows == connector_rows(body, path, first_row_no)


def test_a_duplicate_key_keeps_its_last_value_as_in_the_connectors_records() -> None:
    body = b'{"data": {"list": [{"name": "a", "code": "1", "name": "b", "amount": null}]}}'
    rendered = _render_from_body(SOURCE, prepared(body, 1, "data.list", 1))
    assert rendered.rows == connector_rows(body, "data.list", 1)
    assert b"\tb\t1\t\\N\n" in rendered.rows.text


def test_a_body_only_json_loads_accepts_is_rendered_from_its_records() -> None:
    body = b'{"data": [{"name": "a", "code": NaN, "amount": 1e400}]}'  # msgspec refuses both
    rendered = _render_from_body(SOURCE, prepared(body, 1, "data", 1))
    assert rendered.rows == connector_rows(body, "data", 1)


def test_a_body_that_does_not_hold_what_was_fetched_is_refused() -> None:
    body = json.dumps({"data": [{"name": "a", "code": "1", "amount": "2"}]}).encode()
    with pytest.raises(RuntimeError, match="1 records in the body, 2 fetched"):
        _render_from_body(SOURCE, prepared(body, 2, "data", 1))
