"""Validation benchmark: `validate_penalties_1m`, the full penalty suite against a hand-written query.

Ours is :func:`huiju.validation.validate_load` as the pipeline runs it: the set-based
quarantine statement (every rule, every failing row with all its reasons) *and* the GX run
of the reviewed suite (18 expectations, results stored; no Data Docs since issue 17). The anchor is one
hand-written SQL query computing the same per-row verdict (bad or not) with the same rule
functions, counted in the database — no quarantine rows, no reasons, no GX.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
from huiju_demo.bulk import write_penalty_csv

from bench.harness import Entry, rows_entry, run_isolated
from huiju.registry import load_registry

ROWS = 1_000_000
SOURCE = "scjgj_penalty"
BAD_EVERY = 1000  # one row in a thousand carries a defect, so the quarantine path is exercised

# The same verdicts as the penalty suite, written by hand (kept in step with
# config/datasets/admin_penalty.yaml when rules change; the bench asserts equal counts).
ANCHOR_SQL = """
with batch as (
    select r.*, row_number() over (partition by decision_no order by _row_no) as occurrence
    from raw.admin_penalty r where r._load_id = %(load_id)s
),
published as (
    select btrim(p.decision_no) as key, array_agg(distinct l.source_id) as publishers
    from raw.admin_penalty p join ops.loads l on l.load_id = p._load_id and l.status = 'published'
    where not exists (select 1 from quarantine.rows q where q.load_id = p._load_id and q.row_no = p._row_no)
    group by 1
)
select count(*) filter (where
       nullif(btrim(party_name), '') is null
    or nullif(btrim(party_type), '') is null
    or ops.normalise_text(party_type) <> all('{法人及非法人组织,自然人,个体工商户}')
    or ops.uscc_problem(ops.nfkc(uscc)) is not null
    or ops.id_number_problem(ops.nfkc(legal_rep_id_no)) is not null
    or nullif(btrim(decision_no), '') is null
    or nullif(btrim(penalty_type), '') is null
    or ops.normalise_text(penalty_type) <> all('{警告,通报批评,罚款,没收违法所得,没收非法财物,暂扣许可证件,'
                                               '降低资质等级,吊销许可证件,限制开展生产经营活动,责令停产停业,'
                                               '责令关闭,限制从业,行政拘留,其他}')
    or ops.number_problem(ops.nfkc(fine_amount_wan)) is not null
    or ops.parse_number_cn(fine_amount_wan) > 10000 or ops.parse_number_cn(fine_amount_wan) < 0
    or nullif(btrim(decision_date), '') is null
    or ops.date_problem_cn(decision_date, null) is not null
    or ops.date_problem_cn(publish_until, null) is not null
    or ops.parse_date_cn(decision_date, null) > ops.parse_date_cn(publish_until, null)
    or nullif(btrim(authority), '') is null
    or ops.uscc_problem(ops.nfkc(authority_uscc)) is not null
    or nullif(btrim(decision_no), '') is not null and occurrence > 1
    or pub.publishers is not null and pub.publishers <> array[%(source_id)s]
) as bad, count(*) as total
from batch b left join published pub on pub.key = btrim(b.decision_no)
"""


def _land(url: str, path: str, out: str) -> None:
    """Child process: land the file (untimed setup)."""
    from huiju.landing import land_file

    registry = load_registry()
    with psycopg.connect(url) as conn:
        result = land_file(conn, registry, registry.source(SOURCE), Path(path))
    assert result.outcome == "landed", result
    Path(out).write_text(json.dumps({"load_id": result.load_id, "rows": result.rows_received}))


def _anchor(url: str, load_id: str, out: str) -> None:
    """Child process: the hand-written verdict query."""
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        bad, total = conn.execute(ANCHOR_SQL, {"load_id": load_id, "source_id": SOURCE}).fetchone()
        seconds = time.perf_counter() - started
    Path(out).write_text(json.dumps({"seconds": seconds, "bad": bad, "rows": total}))


def _validate(url: str, load_id: str, out: str) -> None:
    """Child process: the platform's validation (quarantine statement + GX suite)."""
    from huiju.validation import validate_load

    registry = load_registry()
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        result = validate_load(conn, registry, load_id)
        seconds = time.perf_counter() - started
        gx_seconds = conn.execute("select gx_seconds from ops.validation_runs where load_id = %s",
                                  (load_id,)).fetchone()[0]
    Path(out).write_text(json.dumps({"seconds": seconds, "gx_seconds": gx_seconds,
                                     "bad": result.rows_quarantined, "rows": result.rows_received}))


def _measure(function: str, *args: str, work: Path) -> tuple[dict, float]:
    out = work / f"validation{function}.json"
    peak = run_isolated("bench.validation", function, *args, str(out))
    return json.loads(out.read_text()), peak


def validate_penalties_1m(url: str, work: Path) -> Entry:
    """The full penalty suite on 1,000,000 landed rows vs one hand-written verdict query."""
    source = load_registry().source(SOURCE)
    uscc_header = source.header_for_field["uscc"]
    overrides = {i: {uscc_header: "91110105MA0000000Z"} for i in range(0, ROWS, BAD_EVERY)}
    path = write_penalty_csv(work / "penalties_validate_1m.csv", source, ROWS, tag="V", overrides=overrides)
    landed, _ = _measure("_land", url, str(path), work=work)
    anchor, _ = _measure("_anchor", url, landed["load_id"], work=work)
    ours, peak = _measure("_validate", url, landed["load_id"], work=work)
    assert ours["bad"] == anchor["bad"], f"verdicts differ: ours {ours['bad']}, anchor {anchor['bad']}"
    return rows_entry("validate_penalties_1m", ours["rows"], ours["seconds"],
                      "one hand-written SQL query computing the same per-row verdicts",
                      anchor["seconds"], peak, target_ratio=0.33,
                      note=(f"ours: quarantine statement (18 rules, every failing row with all reasons) + GX suite "
                            f"({ours['gx_seconds']:.1f}s); {ours['bad']} rows quarantined"))


BENCHMARKS = {"validate_penalties_1m": validate_penalties_1m}
