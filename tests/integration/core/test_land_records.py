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
