"""Warehouse build benchmarks: `dbt_incremental_1pct` and `dag_parse_dbt`.

``dbt_incremental_1pct``: 1,000,000 penalties on 200,000 legal persons are landed, validated and
published (untimed), the whole project is built from nothing (the scheduled build,
``huiju.transform.scheduled_build``, with ``--full-refresh``: seeds, models, snapshots, data tests),
then a day's 1% — 10,000 rows, a hundred of them corrections of earlier decisions — is published
and built incrementally (the scheduled build). Unit tests run in CI, not in either. Each
build is one dbt invocation in a fresh process; ratio = full seconds ÷ incremental seconds.

``dag_parse_dbt``: importing ``dags/huiju_transform.py`` (manifest present, so Cosmos renders every
dbt node) in a fresh interpreter where Airflow is already imported, as in the DAG processor.
"""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg
from huiju_demo.bulk import penalty_row, valid_uscc
from stdnum.cn import ric

from bench.harness import Entry, fresh_ledger, run_isolated
from huiju.registry import Source, load_registry
from huiju.settings import get_settings

ROWS = 1_000_000
LEGAL_PERSONS = 200_000
NEW_SHARE = 0.01
CORRECTIONS = 100
LAYERS = ("staging", "basic", "thematic", "archive", "credit", "share")


def id_number(serial: int) -> str:
    """A valid resident ID number, distinct for every serial below 1,000 × 18,000."""
    born = date(1950, 1, 1) + timedelta(days=serial // 1000 % 18_000)
    body = f"110105{born:%Y%m%d}{serial % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def write_penalties(path: Path, source: Source, rows: int, *, tag: str, first: int = 0,
                    corrected: range = range(0)) -> Path:
    """``rows`` valid penalties on ``LEGAL_PERSONS`` distinct legal persons (row i → person i mod N).

    Decision numbers are ``测罚〔2026〕<tag><first + i>号``; the rows of ``corrected`` instead carry
    decision numbers of the base file (tag "B") with a changed fine — a department's corrections.
    """
    headers = list(source.columns)
    field_of = source.columns
    base = penalty_row(source, 0, tag)
    fields = [field_of[h] for h in headers]
    with path.open("w", encoding="gb18030", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for index in range(rows):
            serial = (first + index) % LEGAL_PERSONS
            values = {"uscc": valid_uscc(serial), "legal_rep_id_no": id_number(serial),
                      "party_name": f"测试企业{serial}有限公司",
                      "decision_no": f"测罚〔2026〕{tag}{first + index}号"}
            if index in corrected:
                values.update(decision_no=f"测罚〔2026〕B{index}号", fine_amount_wan="2.5")
            writer.writerow([values.get(f, base[h]) for f, h in zip(fields, headers, strict=True)])
    return path


def _land(url: str, source_id: str, path: str) -> None:
    """Child process: land, validate and publish one file as the platform does."""
    from huiju.landing import land_file
    from huiju.validation import publish_load, validate_load

    registry = load_registry()
    with psycopg.connect(url) as conn:
        landed = land_file(conn, registry, registry.source(source_id), Path(path))
        assert landed.outcome == "landed", landed
        validated = validate_load(conn, registry, landed.load_id)
        assert validated.status == "validated", validated
        assert publish_load(conn, landed.load_id)


def _build(url: str, target: str, out: str, *args: str) -> None:
    """Child process: one ``dbt build`` invocation, timed (dbt's import and project parse included)."""
    from huiju.transform import scheduled_build

    started = time.perf_counter()
    scheduled_build(url, *args, target_path=Path(target))
    Path(out).write_text(json.dumps({"seconds": time.perf_counter() - started}))


def _timed_build(url: str, work: Path, name: str, *args: str) -> tuple[float, float]:
    out = work / f"{name}.json"
    peak = run_isolated("bench.dbt", "_build", url, str(work / "target"), str(out), *args)
    return json.loads(out.read_text())["seconds"], peak


def penalties_and_a_day(work: Path, prefix: str) -> tuple[str, Path, Path, int]:
    """The market regulator's ROWS penalties and a day's 1% after them (new rows and CORRECTIONS corrections),
    as its CSVs under ``work``: (source id, base file, day file, the day's rows)."""
    source = load_registry().source("scjgj_penalty")
    new_rows = int(ROWS * NEW_SHARE)
    base = write_penalties(work / f"{prefix}_1m.csv", source, ROWS, tag="B")
    day = write_penalties(work / f"{prefix}_day.csv", source, new_rows, tag="N", first=ROWS,
                          corrected=range(CORRECTIONS))
    return source.id, base, day, new_rows


def dbt_incremental_1pct(url: str, work: Path) -> Entry:
    """A daily incremental build with 1% new rows vs the full build, same warehouse, same run."""
    with psycopg.connect(url, autocommit=True) as conn:  # the dbt layers of an earlier run (snapshots too)
        for layer in LAYERS:
            conn.execute(f"drop schema if exists {layer} cascade")
    fresh_ledger(url)  # analysis_incremental_1pct landed the same million penalties (a repeat of the same bytes)
    source_id, base, day, new_rows = penalties_and_a_day(work, "penalties")
    run_isolated("bench.dbt", "_land", url, source_id, str(base))
    full, full_peak = _timed_build(url, work, "full", "--full-refresh")
    run_isolated("bench.dbt", "_land", url, source_id, str(day))
    incremental, peak = _timed_build(url, work, "incremental")
    return Entry(name="dbt_incremental_1pct", seconds=round(incremental, 3), rows=new_rows,
                 rows_per_s=round(new_rows / incremental), anchor="full build (dbt build --full-refresh)",
                 anchor_seconds=round(full, 3), ratio=round(full / incremental, 3),
                 peak_rss_mb=round(max(peak, full_peak), 1), target_ratio=5.0,
                 note=f"{ROWS:,} penalties on {LEGAL_PERSONS:,} legal persons, then {new_rows:,} new rows "
                      f"({CORRECTIONS} corrections); each build one dbt invocation as scheduled: seeds, models, "
                      "snapshots and data tests (unit tests run in CI)")


PARSE_PROBE = """
import sys, time
import airflow.sdk  # already imported in Airflow's DAG processor
import huiju_airflow.dag_factory  # imported once per processor by the ingest DAG file too
import runpy
started = time.perf_counter()
namespace = runpy.run_path(sys.argv[1])
seconds = time.perf_counter() - started
print(seconds, len(namespace["dag"].tasks))
"""


def dag_parse_dbt(url: str, work: Path) -> Entry:
    """Import time of the dbt DAG file (Cosmos rendering the manifest), median of five fresh interpreters."""
    from huiju.transform import ensure_manifest

    ensure_manifest()
    dag_file = get_settings().dags_dir / "huiju_transform.py"
    seconds, tasks = [], 0
    for _ in range(5):
        done = subprocess.run([sys.executable, "-c", PARSE_PROBE, str(dag_file)], capture_output=True, text=True,
                              check=True)
        value, count = done.stdout.strip().splitlines()[-1].split()
        seconds.append(float(value))
        tasks = int(count)
    median = statistics.median(seconds)
    return Entry(name="dag_parse_dbt", seconds=round(median, 3), anchor="budget", anchor_seconds=1.0,
                 ratio=round(1.0 / median, 3), peak_rss_mb=0.0, target_ratio=1.0,
                 note=f"dags/huiju_transform.py with {tasks} tasks (Cosmos, LoadMode.DBT_MANIFEST); "
                      f"runs: {', '.join(f'{s:.2f}' for s in seconds)} s")


BENCHMARKS = {"dbt_incremental_1pct": dbt_incremental_1pct, "dag_parse_dbt": dag_parse_dbt}
