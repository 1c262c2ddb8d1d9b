"""Landing records (pages, extracts) with their cursor in one transaction."""

from __future__ import annotations

import psycopg
import pytest

from huiju.landing import land_records
from huiju.ledger import get_cursor, make_content_id
from huiju.registry import load_registry
from huiju.validation import validate_load


def _page(start: int, count: int) -> list[dict[str, object]]:
    from huiju_demo.bulk import penalty_row

    source = load_registry().source("swj_penalty")
    return [{**penalty_row(source, i, "R"), "页内序号": i} for i in range(start, start + count)]


def test_pages_land_once_and_the_cursor_moves_with_them(pg_url: str) -> None:
    registry = load_registry()
    source = registry.source("swj_penalty")
    page = _page(0, 3)
    payload = repr(page).encode()
    with psycopg.connect(pg_url) as conn:
        first = land_records(conn, registry, source, reference="page=1", content_id=make_content_id("page=1", "v1"),
                             records=page, payload=payload, cursor={"page": 2})
        assert (first.outcome, first.rows_received) == ("landed", 3)
        assert first.warnings == ["fields not in the configuration were kept in _extra: 页内序号"]
        assert get_cursor(conn, source.id) == {"page": 2}
        rows = conn.execute("select _row_no, _source_ref, decision_no, _extra from raw.admin_penalty"
                            " where _load_id = %s order by _row_no", (first.load_id,)).fetchall()
        assert [(r[0], r[1], r[3]) for r in rows] == [(1, "page=1", {"页内序号": 0}), (2, "page=1", {"页内序号": 1}),
                                                     (3, "page=1", {"页内序号": 2})]
        # A rerun after a crash that landed the page but lost the position: nothing twice, cursor moves.
        again = land_records(conn, registry, source, reference="page=1",
                             content_id=make_content_id("page=1", "v1"), records=page, payload=payload,
                             cursor={"page": 3})
        assert again.outcome == "already_landed"
        assert get_cursor(conn, source.id) == {"page": 3}
        assert conn.execute("select count(*) from raw.admin_penalty where _load_id = %s",
                            (first.load_id,)).fetchone()[0] == 3
        assert validate_load(conn, registry, first.load_id).rows_quarantined == 0


def test_a_failed_batch_leaves_neither_rows_nor_cursor(pg_url: str) -> None:
    registry = load_registry()
    source = registry.source("scjgj_penalty")

    def records() -> object:
        yield {"当事人名称": "甲"}
        raise ConnectionError("connection reset mid-page")

    with psycopg.connect(pg_url) as conn:
        content_id = make_content_id("page=9")
        with pytest.raises(ConnectionError):
            land_records(conn, registry, source, reference="page=9", content_id=content_id, records=records(),
                         cursor={"page": 10})
        assert get_cursor(conn, source.id) is None
        assert conn.execute("select count(*) from ops.loads where sha256 = %s", (content_id,)).fetchone()[0] == 0


def test_national_codes_become_names_and_an_unknown_code_is_quarantined_naming_source_batch_and_row(
        pg_url: str) -> None:
    # The province's backflow may send 行政相对人类别 and 处罚类别 as national codes (config/item_sets/codes/).
    from huiju_demo.bulk import penalty_row

    from huiju.landing import RecordBatch, land_record_batches

    registry = load_registry()
    source = registry.source("province_penalty_backflow")
    sent = [("1", "03"), ("01", "01;03"), ("法人及非法人组织", "罚款"), ("2", "77"), ("3", "警告")]
    records = [{**penalty_row(source, i, "N"), "CF_XDR_LB": party, "CF_CFLB": kinds}
               for i, (party, kinds) in enumerate(sent)]
    with psycopg.connect(pg_url) as conn:
        [paged] = land_record_batches(conn, registry, source, [RecordBatch("page=1", make_content_id("codes", "p"),
                                                                           records[:3])])
        single = land_records(conn, registry, source, reference="page=2", content_id=make_content_id("codes", "s"),
                              records=records[3:], first_row_no=4)
        landed = conn.execute("select _row_no, party_type, penalty_type from raw.admin_penalty"
                              " where _load_id = any(%s) order by _row_no",
                              ([paged.load_id, single.load_id],)).fetchall()
        assert landed == [(1, "法人及非法人组织", "罚款"), (2, "法人及非法人组织", "警告;罚款"),
                          (3, "法人及非法人组织", "罚款"), (4, "自然人", "77"), (5, "个体工商户", "警告")]
        quarantined = conn.execute("select load_id, row_no, violations, reasons from quarantine.rows"
                                   " where load_id = any(%s)", ([paged.load_id, single.load_id],)).fetchall()
        assert [(load_id, row_no) for load_id, row_no, _, _ in quarantined] == [(single.load_id, 4)]
        [(_, _, violations, reason)] = quarantined
        assert [(v["rule"], v["field"], v["header"], v["value"]) for v in violations] == [
            ("code", "penalty_type", "CF_CFLB", "77")]
        assert reason == (f"来源 province_penalty_backflow 批次 {single.load_id} 第4行：「CF_CFLB」的代码 77 不在"
                          "《处罚类别代码》（config/item_sets/codes/）中，无法转换为名称；请与报送方核对代码后重新报送")
        # Validation keeps the landing's verdict and adds its own (77 is no 处罚类别 either).
        assert validate_load(conn, registry, single.load_id, run_gx=False).rows_quarantined == 1
        assert validate_load(conn, registry, paged.load_id, run_gx=False).rows_quarantined == 0
        rules = conn.execute("select array(select v->>'rule' from jsonb_array_elements(violations) v)"
                             " from quarantine.rows where load_id = %s", (single.load_id,)).fetchone()[0]
        assert rules == ["code", "enum"]
    # A department's own source (names under its own headers) is never decoded: a code there is a wrong value.
    city = registry.source("swj_penalty")
    with psycopg.connect(pg_url) as conn:
        plain = land_records(conn, registry, city, reference="page=1", content_id=make_content_id("codes", "city"),
                             records=[{**penalty_row(city, 1, "N"), city.header_for_field["party_type"]: "1"}])
        assert conn.execute("select party_type from raw.admin_penalty where _load_id = %s",
                            (plain.load_id,)).fetchone() == ("1",)
