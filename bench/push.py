"""Push benchmarks (issue 18).

* ``push_100k``: 100,000 credit records pushed to a local receiver that accepts everything (the demo's
  simulated platform, :class:`huiju_demo.credit_platform.CreditPlatform`, in this process): ours is the
  whole run in its own process — the outbox computed from the warehouse (payloads, content hashes,
  COPY), batches cut, each POSTed with its idempotency key through the connector (retry policy,
  signing none: bearer), every receipt recorded per record. The anchor posts the same payloads, in
  the same batches, with the bare httpx client (read from the outbox ours wrote), run before and
  after ours (their mean). Target ratio ≥ 0.5.
* ``push_outbox_1pct``: what is due after a day that changed 1% of 1,000,000 credit records, against
  computing it from nothing (ratio = from nothing / after the day, target ≥ 10).

The credit relation is a table of the benchmark's own with the credit penalty models' columns and a
view adding ``is_publishable``, as dbt's credit layer has it, filled by ``generate_series``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.harness import rows_entry, run_isolated

SCHEMA = "bench_push"
RECORDS_100K = 100_000
RECORDS_1M = 1_000_000
BATCH = 500


def _fill(url: str, rows: int) -> None:
    """The stand-in credit relation with ``rows`` decisions, published yesterday."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(f"drop schema if exists {SCHEMA} cascade")
        conn.execute("delete from ops.push_receipts; delete from ops.push_outbox; delete from ops.push_batches;"
                     " delete from ops.push_records; delete from ops.push_cursors; delete from push_private.payloads")
        conn.execute(f"create schema {SCHEMA}")
        # legal_rep_id_no 11010519491231002X: GB 11643-1999's own example number, not a person's
        conn.execute(
            f"create table {SCHEMA}.penalties_data as select 'BP' || lpad(n::text, 8, '0') as decision_no,"
            " '测试企业' || n || '有限公司' as party_name, '1' as party_type_code,"
            " '91330100MA' || lpad(n::text, 8, '0') as uscc, '张三' as legal_rep,"
            " '11010519491231002X' as legal_rep_id_no, '2' as penalty_type_code, '罚款' as penalty_content,"
            " (n %% 100)::numeric / 10 as fine_amount_wan, date '2026-11-02' + (n %% 20) as decision_date,"
            " date '2029-11-01' as publish_until, '市场监督管理局' as authority,"
            " '11330100000000000X' as authority_uscc, 'scjgj' as source_department, 'load-bench' as load_id,"
            " n as source_row_no, now() - interval '1 day' as published_at from generate_series(1, %s) as n",
            (rows,))
        conn.execute(f"alter table {SCHEMA}.penalties_data add primary key (decision_no)")
        conn.execute(f"create index on {SCHEMA}.penalties_data (published_at)")
        conn.execute(f"create view {SCHEMA}.penalties as select *, coalesce(publish_until >= current_date, true)"
                     f" as is_publishable from {SCHEMA}.penalties_data")
        conn.execute(f"analyze {SCHEMA}.penalties_data")


def _target(batch_size: int = BATCH):
    from huiju.push.targets import Target

    return Target.model_validate({
        "target": "bench", "title": "bench", "connection": "bench", "auth": "bearer", "batch_size": batch_size,
        "clear_fields": ["legal_rep_id_no"],
        "relations": [{"relation": f"{SCHEMA}.penalties", "dataset": "admin_penalty", "item_set": "CF",
                       "key": "decision_no",
                       "fields": {"CF_WSH": "decision_no", "CF_XDR_MC": "party_name", "CF_XDR_LB": "party_type_code",
                                  "CF_XDR_SHXYM": "uscc", "CF_FRDB": "legal_rep", "CF_FRDB_ZJHM": "legal_rep_id_no",
                                  "CF_CFLB": "penalty_type_code", "CF_NR": "penalty_content",
                                  "CF_NR_FK": "fine_amount_wan", "CF_JDRQ": "decision_date",
                                  "CF_GSJZQ": "publish_until", "CF_CFJG": "authority", "CF_CFJGDM": "authority_uscc",
                                  "CF_SJLY": "source_department"}}]})


def _ours(url: str, base_url: str, token: str, out: str) -> None:
    """Child process: the whole push run (outbox, batches, sends, receipts)."""
    import psycopg

    from huiju.channels.connection import ConnectionInfo
    from huiju.push.run import platform_for, push_target
    from huiju.registry import load_registry

    registry = load_registry()
    target = _target()
    platform = platform_for(target, ConnectionInfo(conn_id="bench", password=token, extra={"base_url": base_url}))
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        report = push_target(conn, registry, target, platform)
        seconds = time.perf_counter() - started
    platform.close()
    Path(out).write_text(json.dumps({"seconds": seconds, "accepted": report.sent.accepted,
                                     "batches": report.sent.batches_sent}))


def _anchor(url: str, base_url: str, token: str, out: str) -> None:
    """Child process: the same batches' bodies POSTed with bare httpx (bodies built before the clock starts)."""
    import httpx
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("select batch_id, idempotency_key, (select '[' || string_agg(p.payload, ',' order by"
                            " o.outbox_id) || ']' from ops.push_outbox o join push_private.payloads p"
                            " on p.content_hash = o.content_hash where o.batch_id = b.batch_id)"
                            " from ops.push_batches b order by batch_no").fetchall()
    bodies = [(key, ('{"batch_id":"' + batch_id + '-anchor","records":' + records + "}").encode()) for
              batch_id, key, records in rows]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"}
    with httpx.Client(timeout=60) as client:
        started = time.perf_counter()
        for key, body in bodies:
            client.post(base_url + "/api/v1/push/batches", content=body,
                        headers={**headers, "Idempotency-Key": key + "-anchor"}).raise_for_status()
        seconds = time.perf_counter() - started
    Path(out).write_text(json.dumps({"seconds": seconds, "batches": len(bodies)}))


def push_100k(url: str, work: Path):
    """100,000 records pushed (outbox → batches → sends → receipts) vs bare httpx posting the same bodies."""
    from huiju_demo.credit_platform import CreditPlatform

    _fill(url, RECORDS_100K)
    receiver = CreditPlatform(name="bench", auth="bearer")
    anchors = []
    with receiver.running():
        ours_out = work / "push_ours.json"
        peak = run_isolated("bench.push", "_ours", url, receiver.url, receiver.secret, str(ours_out))
        ours = json.loads(ours_out.read_text())
        assert ours["accepted"] == RECORDS_100K, ours
        # The anchor needs the batches ours wrote; it runs after ours, and again (a second receiver's state).
        for when in ("first", "second"):
            receiver.receipts_by_key.clear()
            receiver.receipts_by_batch.clear()
            anchor_out = work / f"push_anchor_{when}.json"
            run_isolated("bench.push", "_anchor", url, receiver.url, receiver.secret, str(anchor_out))
            anchors.append(json.loads(anchor_out.read_text())["seconds"])
    return rows_entry("push_100k", RECORDS_100K, ours["seconds"], "bare httpx POST of the same batch bodies",
                      sum(anchors) / len(anchors), peak, target_ratio=0.5,
                      note=f"ours: outbox computed from the warehouse (payload, content hash, COPY), "
                           f"{ours['batches']} batches of {BATCH} each POSTed with its idempotency key through the "
                           "connector, every receipt recorded per record; receiver in the bench process; "
                           f"anchor: mean of two runs ({anchors[0]:.2f} s, {anchors[1]:.2f} s)")


def _due(url: str, mode: str, out: str) -> None:
    """Child process: compute what is due (``full``: from nothing; ``day``: after 1% changed)."""
    import psycopg

    from huiju.push.outbox import compute_due
    from huiju.registry import load_registry

    registry = load_registry()
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        report = compute_due(conn, registry, _target())
        seconds = time.perf_counter() - started
    Path(out).write_text(json.dumps({"seconds": seconds, "queued": report.queued}))


def push_outbox_1pct(url: str, work: Path):
    """What is due after 1% of 1,000,000 records changed, vs computing it from nothing."""
    import psycopg

    _fill(url, RECORDS_1M)
    full_out, day_out = work / "push_due_full.json", work / "push_due_day.json"
    run_isolated("bench.push", "_due", url, "full", str(full_out))
    full = json.loads(full_out.read_text())
    assert full["queued"] == RECORDS_1M, full
    with psycopg.connect(url) as conn:  # a day: 1% corrected at the source and published again
        conn.execute(f"update {SCHEMA}.penalties_data set penalty_content = '罚款（更正）', published_at = now()"
                     " where source_row_no % 100 = 0")
        conn.execute(f"analyze {SCHEMA}.penalties_data")
    peak = run_isolated("bench.push", "_due", url, "day", str(day_out))
    day = json.loads(day_out.read_text())
    assert day["queued"] == RECORDS_1M // 100, day
    with psycopg.connect(url) as conn:
        conn.execute(f"drop schema {SCHEMA} cascade")
        conn.execute("delete from ops.push_outbox; delete from ops.push_records; delete from ops.push_cursors;"
                     " delete from push_private.payloads")
    return rows_entry("push_outbox_1pct", RECORDS_1M // 100, day["seconds"],
                      "the same outbox computed from nothing (1,000,000 records)", full["seconds"], peak,
                      target_ratio=10.0,
                      note="ours: records published since the cursor read and hashed, expired and deleted ones "
                           "found from the push state (one anti-join); anchor: every record read, hashed and queued")


BENCHMARKS = {"push_100k": push_100k, "push_outbox_1pct": push_outbox_1pct}
