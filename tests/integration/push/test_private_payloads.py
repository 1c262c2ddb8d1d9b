"""Issue 15 on the push outbox: payloads live in ``push_private`` (migration 181), not in ``ops``.

A warehouse upgraded with batches in flight (payloads still in ``ops.push_outbox``) moves them there
and sends them as the batch's idempotency key was made for: every record exactly once.
"""

from __future__ import annotations

import psycopg
from huiju_demo.credit_platform import CreditPlatform as SimulatedPlatform

from huiju import warehouse
from huiju.push.outbox import compute_due, text_hash
from huiju.push.run import push_target
from huiju.push.sender import assign_batches, drain
from tests.integration.push.conftest import connector, credit_table, make_target
from tests.support.citizens import EXAMPLE_ID_NUMBER

MIGRATION = "181_push_private.sql"
ID_NUMBER = EXAMPLE_ID_NUMBER


def test_payloads_are_kept_once_by_content_hash_outside_ops(pg_url, credit, registry) -> None:
    credit.add(12)
    city, province = make_target(credit), make_target(credit, "province_share")
    with psycopg.connect(pg_url) as conn:
        for target in (city, province):
            assert compute_due(conn, registry, target).upserts == 12
        payloads = conn.execute("select content_hash, payload from push_private.payloads").fetchall()
        hashes = {digest for (digest,) in conn.execute("select content_hash from ops.push_outbox")}
        conn.commit()
    # The same payload for both targets (same item codes, same entitlement): stored once, keyed by its bytes' hash.
    assert len(payloads) == 12 and {digest for digest, _ in payloads} == hashes
    assert all(text_hash(payload) == digest and ID_NUMBER in payload for digest, payload in payloads)


def test_an_upgraded_warehouse_sends_the_payloads_it_had_in_ops_exactly_once(make_database, registry, waits) -> None:
    url = make_database("pushupgrade", migrated=True)
    with credit_table(url) as credit:
        credit.add(25)
        target = make_target(credit)
        with psycopg.connect(url) as conn:
            compute_due(conn, registry, target)
            assert len(assign_batches(conn, target)) == 3
            # Back to the shape before migration 181: the payloads in ops.push_outbox as jsonb.
            conn.execute("alter table ops.push_outbox add column payload jsonb")
            conn.execute("update ops.push_outbox o set payload = p.payload::jsonb from push_private.payloads p"
                         " where p.content_hash = o.content_hash")
            conn.execute("alter table ops.push_outbox alter column payload set not null")
            conn.execute("drop schema push_private cascade")
            conn.execute("delete from ops.schema_migrations where name = %s", (MIGRATION,))
            conn.commit()
        warehouse._MIGRATED.clear()  # the admin's URL and the owner's it bootstraps to: migrate again, for real
        warehouse.migrate(url)
        with psycopg.connect(url) as conn:
            assert conn.execute("select count(*) from information_schema.columns where table_schema = 'ops'"
                                " and table_name = 'push_outbox' and column_name = 'payload'").fetchone() == (0,)
            moved = conn.execute("select payload from push_private.payloads").fetchall()
            assert len(moved) == 25 and all(ID_NUMBER in payload for (payload,) in moved)
            conn.commit()
            platform = SimulatedPlatform()
            with platform.running():
                report = drain(conn, target, connector(target, platform, waits))
            assert (report.batches_sent, report.accepted) == (3, 25)
            assert platform.duplicates() == [] and set(platform.records) == credit.publishable()
            assert platform.records["CF:D000001"]["data"]["CF_FRDB_ZJHM"] == ID_NUMBER


def test_the_leak_scan_finds_no_clear_id_in_ops_after_a_push(pg_url, credit, platform, waits, registry) -> None:
    """The e2e leak scan's check on the push alone (tests/support/leak_scan.py): ops holds no ID the target
    receives in clear; push_private holds them."""
    from tests.support.leak_scan import Needles, scan_schema

    credit.add(30)
    target = make_target(credit)
    with psycopg.connect(pg_url) as conn:
        push_target(conn, registry, target, connector(target, platform, waits))
        needles = Needles()
        needles.collect(ID_NUMBER)
        assert needles.ids == {ID_NUMBER}
        assert scan_schema(needles, conn, "ops") == []
        assert scan_schema(needles, conn, "push_private")
        conn.commit()
    assert len(platform.records) == 30


def test_what_is_due_is_computed_from_what_changed(pg_url, credit, registry) -> None:
    """A row read again whose version is the one rendered last is left out before rendering; a new version is
    due; a change in how the target renders the relation (here: its entitlement to IDs in clear) reads it whole."""
    keys = credit.add(20)
    city = make_target(credit)
    with psycopg.connect(pg_url) as conn:
        first = compute_due(conn, registry, city)
        assert (first.upserts, first.unchanged) == (20, 0)
        again = compute_due(conn, registry, city)  # every row inside the cursor's overlap, none rendered again
        assert (again.upserts, again.unchanged) == (0, 0)
        credit.correct(keys[3], "罚款（更正）")
        corrected = compute_due(conn, registry, city)
        assert (corrected.upserts, corrected.unchanged) == (1, 0)
        masked = compute_due(conn, registry, make_target(credit, clear=False))
        assert (masked.upserts, masked.unchanged) == (20, 0)
        assert compute_due(conn, registry, make_target(credit, clear=False)).queued == 0
        # Only the newest row of a record is sent: the older ones, never batched, are superseded.
        assert conn.execute("select count(*) from ops.push_outbox where state = 'due'").fetchone() == (20,)
        conn.commit()
