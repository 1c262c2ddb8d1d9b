"""The COPY text of a page of records: the page-at-once fast path gives exactly what the general path gives."""

from __future__ import annotations

from huiju_connectors.copy_text import field_text
from hypothesis import given, settings
from hypothesis import strategies as st

from huiju.landing.rows import RecordBatch, _copy_lines

KEYS = ["name", "code", "amount"]

# Values a department's JSON carries: mostly text and null, sometimes numbers, lists, objects, and
# text with the characters COPY must escape.
values = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from("ab中文\\\t\n\r N0"), max_size=6),
    st.integers(), st.floats(allow_nan=False), st.booleans(),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.sampled_from("xy"), st.integers(), max_size=2),
)
records = st.dictionaries(st.sampled_from([*KEYS, "extra"]), values)


def reference_lines(batch: RecordBatch, load_id: str) -> str:
    """Field by field, the obvious way."""
    lines = []
    for row_no, record in enumerate(batch.records, start=batch.first_row_no):
        extra = {k: v for k, v in record.items() if k not in KEYS}
        extra_text = field_text(extra) if extra else "\\N"
        fields = "\t".join(field_text(record.get(key)) for key in KEYS)
        lines.append(f"{field_text(load_id)}\t{field_text(batch.reference)}\t{row_no}\t{extra_text}\t{fields}\n")
    return "".join(lines)


@settings(max_examples=300, deadline=None)
@given(page=st.lists(records, max_size=6), first_row_no=st.integers(1, 10_000),
       reference=st.text(alphabet=st.sampled_from("/?=&a\\\t"), min_size=1, max_size=8))
def test_any_page_is_formatted_like_field_by_field(page: list[dict], first_row_no: int, reference: str) -> None:
    batch = RecordBatch(reference, "content", page, first_row_no=first_row_no)
    assert _copy_lines(batch, "src-0123", KEYS, set(KEYS)) == reference_lines(batch, "src-0123")


def test_a_plain_page_with_nulls_is_formatted_like_field_by_field() -> None:
    page = [{"name": f"单位{n}", "code": None if n % 3 else f"C{n}", "amount": "1.5"} for n in range(50)]
    batch = RecordBatch("/api?page=2", "content", page, first_row_no=101)
    assert _copy_lines(batch, "src-0123", KEYS, set(KEYS)) == reference_lines(batch, "src-0123")


def test_a_value_that_looks_like_a_null_marker_is_escaped() -> None:
    page = [{"name": "\\N", "code": None, "amount": "a\tb"}]
    text = _copy_lines(RecordBatch("/api", "content", page), "src-0123", KEYS, set(KEYS))
    assert text == "src-0123\t/api\t1\t\\N\t\\\\N\t\\N\ta\\tb\n"


def test_records_that_utf8_cannot_encode_are_rejected_with_storable_reasons_and_the_rest_rendered() -> None:
    from huiju.landing import prepare_rows
    from huiju.registry import load_registry

    source = load_registry().source("jtj_penalty").model_copy(update={"columns": {key: key for key in KEYS}})
    good = {"name": "a", "code": "1", "amount": None}
    batch = RecordBatch("/api?page=3", "content-id", [good, {**good, "name": "b\ud800"}, good,
                                                      {**good, "备注\udc00": "x"}], first_row_no=11)
    rows = prepare_rows(source, batch)
    assert (rows.count, [row_no for row_no, *_ in rows.rejected]) == (2, [12, 14])
    assert rows.text == prepare_rows(source, RecordBatch("/api?page=3", "content-id", [good], first_row_no=11)).text \
        + prepare_rows(source, RecordBatch("/api?page=3", "content-id", [good], first_row_no=13)).text
    (_, reason_12, text_12), (_, reason_14, _) = rows.rejected
    assert "name" in reason_12 and "\\ud800" in text_12 and "备注\\udc00" in reason_14
    for _, reason, text in rows.rejected:  # what quarantine stores must itself be storable
        (reason + text).encode("utf-8")
