"""A REST page's records rendered from its JSON body by the landing process: exactly the connector's records.

The connector checks a page without decoding its records whole and leaves them in its body;
the landing process decodes them, plain pages straight into value tuples. Whatever the body,
the COPY text must be what the records the connector would have decoded give, and the page is
checked for drift as the fetcher checks a page it decoded.
"""

from __future__ import annotations

import json

import pytest
from huiju_connectors.rest import Page, RestError, SchemaDrift, check_drift, decode_json, records_at
from hypothesis import given, settings
from hypothesis import strategies as st

from huiju.channels.webservice import _Prepared, _render_from_body
from huiju.landing import RecordBatch, prepare_rows
from huiju.registry import load_registry

KEYS = ["name", "code", "amount"]
SOURCE = load_registry().source("jtj_penalty").model_copy(update={"columns": {key: key for key in KEYS}})
EXPECTED = [*KEYS, "updated_at"]  # drift: every page lacks one expected field

values = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from("ab中文\\\t\n\r N0\"\u2028"), max_size=6),
    st.sampled_from([":null", ": null", "a:null,", "\\N", "null"]),
    st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.sampled_from("xy"), st.integers(), max_size=2),
)
plain_text = st.one_of(st.text(max_size=5), st.sampled_from([":null", ": null", "x:null}", "\\N", "null", "None"]))
plain_records = st.fixed_dictionaries({key: st.one_of(st.none(), plain_text) for key in KEYS})
records = st.one_of(plain_records, st.dictionaries(st.sampled_from([*KEYS, "extra"]), values, min_size=1))


def body_of(page: list[dict], path: str, *, ensure_ascii: bool, compact: bool = False) -> bytes:
    holder: object = page
    for step in reversed([s for s in path.removeprefix("$.").split(".") if s and s != "$"]):
        holder = {"code": 0, "next": None, step: holder}
    separators = (",", ":") if compact else None  # gateways write both "a":null and "a": null
    return json.dumps(holder, ensure_ascii=ensure_ascii, separators=separators).encode("utf-8")


def prepared(body: bytes, count: int, path: str, first_row_no: int, *,
             kept: tuple[int, ...] | None = None) -> _Prepared:
    page = Page("/api?page=2", [], {"v": 1, "position": None}, body, fetched_count=count, in_body=True, kept=kept)
    landed = count if kept is None else len(kept)
    return _Prepared(page, "content-id", "sha", first_row_no, first_row_no + landed - 1, render_from=path)


def render(prepared: _Prepared, drift: str = "warn") -> _Prepared:
    return _render_from_body(SOURCE, EXPECTED, drift, prepared)


def connector_rows(body: bytes, path: str, first_row_no: int, kept: tuple[int, ...] | None = None) -> object:
    """What the fetcher would have rendered from the records the connector decoded."""
    records = records_at(decode_json(body), path)
    records = records if kept is None else [records[i] for i in kept]
    return prepare_rows(SOURCE, RecordBatch("/api?page=2", "content-id", records, first_row_no=first_row_no))


@settings(max_examples=300, deadline=None)
@given(page=st.lists(records, min_size=1, max_size=6), path=st.sampled_from(["", "data", "data.list", "$.data"]),
       first_row_no=st.integers(1, 10_000), ensure_ascii=st.booleans(), compact=st.booleans())
def test_any_page_renders_as_the_connectors_records(page: list[dict], path: str, first_row_no: int,
                                                     ensure_ascii: bool, compact: bool) -> None:
    body = body_of(page, path, ensure_ascii=ensure_ascii, compact=compact)
    rendered = render(prepared(body, len(page), path, first_row_no))
    assert rendered.render_from is None
    assert rendered.rows == connector_rows(body, path, first_row_no)
    assert list(rendered.warnings) == check_drift(page, EXPECTED, "warn")


@settings(max_examples=300, deadline=None)
@given(page=st.lists(records, min_size=1, max_size=6), path=st.sampled_from(["", "data", "data.list", "$.data"]),
       first_row_no=st.integers(1, 10_000), keep=st.data())
def test_a_page_left_in_its_body_renders_its_kept_records_and_is_checked_for_drift(
        page: list[dict], path: str, first_row_no: int, keep: st.DataObject) -> None:
    body = body_of(page, path, ensure_ascii=False)
    kept = keep.draw(st.one_of(st.none(), st.lists(st.integers(0, len(page) - 1), min_size=1, unique=True)
                               .map(lambda positions: tuple(sorted(positions)))))
    landed = page if kept is None else [page[i] for i in kept]
    rendered = render(prepared(body, len(page), path, first_row_no, kept=kept))
    assert rendered.rows == connector_rows(body, path, first_row_no, kept)
    assert list(rendered.warnings) == check_drift(landed, EXPECTED, "warn")
    with pytest.raises(SchemaDrift) as drift:
        check_drift(landed, EXPECTED, "hold")
    held = render(prepared(body, len(page), path, first_row_no, kept=kept), drift="hold")
    assert held.rows is None and held.render_from is None and held.rows_after == first_row_no - 1
    assert held.held is not None and str(drift.value) in held.held and "/api?page=2" in held.held


def test_a_page_left_in_its_body_without_drift_lands_without_warnings() -> None:
    body = json.dumps({"data": [{"name": "a", "code": "1", "amount": None, "updated_at": "2026"}]}).encode()
    rendered = _render_from_body(SOURCE, [*KEYS, "updated_at"], "hold", prepared(body, 1, "data", 1))
    assert rendered.held is None and rendered.warnings == () and rendered.rows == connector_rows(body, "data", 1)


def test_a_duplicate_key_keeps_its_last_value_as_in_the_connectors_records() -> None:
    body = b'{"data": {"list": [{"name": "a", "code": "1", "name": "b", "amount": null}]}}'
    rendered = render(prepared(body, 1, "data.list", 1))
    assert rendered.rows == connector_rows(body, "data.list", 1)
    assert b"\tb\t1\t\\N\n" in rendered.rows.text


def test_a_body_only_json_loads_accepts_is_rendered_from_its_records() -> None:
    body = b'{"data": [{"name": "a", "code": NaN, "amount": 1e400}]}'  # msgspec refuses both
    rendered = render(prepared(body, 1, "data", 1))
    assert rendered.rows == connector_rows(body, "data", 1)


def test_a_body_that_does_not_hold_what_was_fetched_is_refused() -> None:
    body = json.dumps({"data": [{"name": "a", "code": "1", "amount": "2"}]}).encode()
    with pytest.raises(RestError, match="1 records in the body, 2 fetched"):
        render(prepared(body, 2, "data", 1))
    with pytest.raises(RestError, match="1 records in the body, 2 fetched"):
        render(prepared(body.replace(b'"2"', b"2"), 2, "data", 1))  # not plain: the connector's decoding


def test_a_body_that_is_not_json_after_all_is_refused_naming_the_page() -> None:
    body = b'{"data": [{"name": "\xff", "code": "1", "amount": "2"}]}'  # the fetcher's check skips values
    with pytest.raises(RestError, match=r"/api\?page=2: the body is not JSON"):
        render(prepared(body, 1, "data", 1))
