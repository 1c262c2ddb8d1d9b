"""Payloads rendered and hashed by the warehouse are byte for byte those Python renders (issue 18, push speed).

A record sent before the warehouse rendered payloads has its content hash in ``ops.push_records``: the
same record, unchanged, must hash the same way now, or every record would be sent again.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from huiju.push import outbox
from huiju.push.outbox import PayloadBuilder, canonical_json, column_types, compute_due, idempotency_key, text_hash
from huiju.push.targets import PushRelation
from tests.integration.push.conftest import make_target
from tests.support.citizens import EXAMPLE_ID_NUMBER

ID_NUMBER = EXAMPLE_ID_NUMBER

AWKWARD_TEXT = ['say "no"', "back\\slash", "tab\tnew\nline\r", "\x01\x08\x0c\x1f\x7f", "é中文😀\u2028\u2029",
                "", " spaced ", "null"]
AMOUNTS = [Decimal("1.50"), Decimal("0.0"), Decimal("100"), Decimal("-0.5"), Decimal("0.0000000001"),
           Decimal("123456789012345678901234567890.10"), Decimal("NaN"), None]
ID_NUMBERS = [ID_NUMBER, f" {ID_NUMBER}\u3000", "12345678", "123456789", "1234567890", "\x0b\x1c12345", "", None]


@pytest.fixture
def awkward(pg_url: str):
    """A relation whose values are what JSON escaping, amounts, dates and masking get wrong first."""
    with psycopg.connect(pg_url) as conn:
        conn.execute("drop schema if exists pushrender cascade")
        conn.execute("create schema pushrender")
        conn.execute("create table pushrender.records (decision_no text primary key, note text, kind varchar(20),"
                     " amount numeric, count integer, big bigint, decided date, flag boolean, id_no text,"
                     " load_id text, source_row_no integer, published_at timestamptz default now(),"
                     " is_publishable boolean default true, publish_until date)")
        rows = []
        for n in range(max(len(AWKWARD_TEXT), len(AMOUNTS), len(ID_NUMBERS))):
            rows.append((f"K{n:03d}\"\\", AWKWARD_TEXT[n % len(AWKWARD_TEXT)], f"类{n}", AMOUNTS[n % len(AMOUNTS)],
                         -n if n % 3 else None, 2**40 + n, date(2026, 1, 1 + n) if n % 4 else None,
                         [True, False, None][n % 3], ID_NUMBERS[n % len(ID_NUMBERS)], "load-1", n))
        with conn.cursor().copy("copy pushrender.records (decision_no, note, kind, amount, count, big, decided, flag,"
                                " id_no, load_id, source_row_no) from stdin") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        yield conn
        conn.rollback()
        conn.execute("drop schema pushrender cascade")
        conn.commit()


def test_the_warehouse_renders_what_python_renders(awkward: psycopg.Connection) -> None:
    relation = PushRelation.model_validate({
        "relation": "pushrender.records", "dataset": "admin_penalty", "item_set": "CF", "key": "decision_no",
        "decision_date_column": "decided", "department_column": None,
        "fields": {"CF_WSH": "decision_no", "CF_BZ": "note", "CF_LB": "kind", "CF_NR_FK": "amount", "CF_A": "count",
                   "CF_B": "big", "CF_JDRQ": "decided", "CF_F": "flag", "CF_FRDB_ZJHM": "id_no"}})
    for masked in ({}, {"id_no": "id_number"}):
        builder = PayloadBuilder(relation, masked)
        rendering = builder.sql_payload(column_types(awkward, relation.relation))
        assert rendering is not None
        rendered = awkward.execute(sql.SQL("select {}, encode(sha256(convert_to({}, 'UTF8')), 'hex'), {}, r.*"
                                           " from pushrender.records r order by decision_no").format(
            rendering.payload, rendering.payload, rendering.exact)).fetchall()
        columns = [c.name for c in awkward.execute("select * from pushrender.records limit 0").description]
        assert len(rendered) == 8
        for text, digest, exact, *values in rendered:
            row = dict(zip(columns, values, strict=True))
            # Decimal.normalize rounds past 28 digits: that row says so, and its relation is rendered in Python.
            assert exact == (row["amount"] != AMOUNTS[5])
            if exact:
                expected = canonical_json(builder.upsert(row))
                assert text == expected
                assert digest == text_hash(expected)
        if masked:
            assert all(ID_NUMBER not in text for text, *_ in rendered)
    # Free text masked (mask_text) and floats have no exact twin in SQL: those relations are rendered in Python.
    assert PayloadBuilder(relation, {"note": "text"}).sql_payload(column_types(awkward, relation.relation)) is None
    assert PayloadBuilder(relation, {}).sql_payload({**column_types(awkward, relation.relation),
                                                     "amount": "double precision"}) is None


def test_records_hashed_in_python_before_are_not_sent_again(pg_url, credit, registry, monkeypatch) -> None:
    """Records queued by the Python rendering, read again whole by the warehouse's: nothing new is due."""
    credit.add(30)
    for clear in (True, False):
        target = make_target(credit, f"render_{clear}".lower(), clear=clear)
        with psycopg.connect(pg_url) as conn:
            with monkeypatch.context() as python_only:
                python_only.setattr(outbox, "_warehouse_payload", lambda *args: None)
                first = compute_due(conn, registry, target, batched=True)
            assert (first.upserts, first.batches) == (30, 3)
            python_keys = conn.execute("select batch_id, idempotency_key from ops.push_batches where target = %s"
                                       " order by batch_id", (target.target,)).fetchall()
            again = compute_due(conn, registry, target, full=True)
            assert (again.upserts, again.unchanged) == (0, 30)
            # The same rows queued by the warehouse cut the same batches under the same keys.
            conn.execute("delete from ops.push_batches where target = %s", (target.target,))
            conn.execute("delete from ops.push_outbox where target = %s", (target.target,))
            conn.execute("delete from ops.push_records where target = %s", (target.target,))
            conn.execute("delete from ops.push_cursors where target = %s", (target.target,))
            conn.commit()
            warehouse = compute_due(conn, registry, target, batched=True)
            assert (warehouse.upserts, warehouse.batches) == (30, 3)
            assert conn.execute("select batch_id, idempotency_key from ops.push_batches where target = %s"
                                " order by batch_id", (target.target,)).fetchall() == python_keys
            # … the keys the sender's idempotency_key makes of each batch's id and content hashes.
            for batch_id, key in python_keys:
                hashes = [h for (h,) in conn.execute("select content_hash from ops.push_outbox where batch_id = %s"
                                                     " order by outbox_id", (batch_id,))]
                assert key == idempotency_key(batch_id, hashes)
            conn.commit()
