"""Analysis-layer benchmarks: `analysis_incremental_1pct` and `report_monthly`.

``analysis_incremental_1pct``: ``dbt_incremental_1pct``'s data (1,000,000 penalties on 200,000 legal
persons, then a day's 1% — 10,000 rows, a hundred of them corrections) with the warehouse below the
analysis layer built untimed; timed are the analysis layer's full build (``--select analysis
--full-refresh``) and, after the day is published and the layers below it built, its daily build
(``--select analysis``). Each is one dbt invocation in a fresh process (dbt's import and parse
included, as in ``dbt_incremental_1pct``); ratio = full ÷ daily.

``report_monthly``: the monthly 通报 (``config/reports/monthly_bulletin.yaml``) rendered — its tables
read as of the month's close, workbook with native charts, PNG charts, archive, index and e-mail
queued — from a year of penalties from 300 sources (departments' authorities), against a budget of
10 s: ratio = 10 ÷ seconds, in a fresh process (matplotlib's and XlsxWriter's import included).
"""

from __future__ import annotations

import csv
import json
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg

from bench.dbt import CORRECTIONS, LAYERS, ROWS, _land, _timed_build, penalties_and_a_day, write_penalties
from bench.harness import Entry, fresh_ledger, run_isolated
from huiju.registry import load_registry

REPORT_BUDGET_S = 10.0
REPORT_SOURCES = 300
REPORT_ROWS = 120_000  # a year of penalties from 300 sources: ~33 a source a month


def _reset(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for layer in (*LAYERS, "analysis"):
            conn.execute(f"drop schema if exists {layer} cascade")


def analysis_incremental_1pct(url: str, work: Path) -> Entry:
    """The analysis layer's daily build with 1% new penalties vs its full build, same warehouse, same run."""
    _reset(url)
    fresh_ledger(url)  # the same million penalties as dbt_incremental_1pct's: never a repeat of an earlier landing
    source_id, base, day, new_rows = penalties_and_a_day(work, "analysis")
    run_isolated("bench.dbt", "_land", url, source_id, str(base))
    _timed_build(url, work, "below_full", "--full-refresh", "--exclude", "analysis")
    full, full_peak = _timed_build(url, work, "analysis_full", "--full-refresh", "--select", "analysis")
    run_isolated("bench.dbt", "_land", url, source_id, str(day))
    _timed_build(url, work, "below_daily", "--exclude", "analysis")
    daily, peak = _timed_build(url, work, "analysis_daily", "--select", "analysis")
    return Entry(name="analysis_incremental_1pct", seconds=round(daily, 3), rows=new_rows,
                 rows_per_s=round(new_rows / daily),
                 anchor="analysis layer full build (--select analysis --full-refresh)",
                 anchor_seconds=round(full, 3), ratio=round(full / daily, 3),
                 peak_rss_mb=round(max(peak, full_peak), 1), target_ratio=5.0,
                 note=f"{ROWS:,} penalties, then {new_rows:,} new rows ({CORRECTIONS} corrections); the layers below "
                      "built untimed; each build one dbt invocation (import and parse included) with its data tests")


def _write_year(path: Path, source, month: date) -> Path:
    """REPORT_ROWS penalties decided over the twelve months to ``month`` (up to its day), by 300 authorities."""
    headers = list(source.columns)
    field_of = source.columns
    template = write_penalties(path.with_suffix(".tmpl.csv"), source, 1, tag="Y")
    with template.open(encoding="gb18030", newline="") as handle:
        base = next(iter(csv.DictReader(handle)))
    from huiju_demo.bulk import valid_uscc

    from bench.dbt import id_number

    with path.open("w", encoding="gb18030", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for index in range(REPORT_ROWS):
            serial = index % 20_000
            first = month.replace(day=1)
            for _ in range(index % 12):
                first = (first - timedelta(days=1)).replace(day=1)
            values = {"uscc": valid_uscc(serial), "legal_rep_id_no": id_number(serial),
                      "party_name": f"测试企业{serial}有限公司", "decision_no": f"测罚〔2026〕Y{index}号",
                      "decision_date": (first + timedelta(days=index % (28 if index % 12 else month.day))).isoformat(),
                      "authority": f"测试市第{index % REPORT_SOURCES}执法机关",
                      "party_type": "自然人" if index % 10 == 0 else "法人及非法人组织",
                      "fine_amount_wan": f"{(index % 50) / 10:.1f}"}
            writer.writerow([values.get(field_of[h], base[h]) for h in headers])
    return path


def _report(out: str, month: str, now: str) -> None:
    """Child process: the monthly report for ``month``, timed."""
    from huiju.reports.delivery import run_configured

    started = time.perf_counter()
    run = run_configured("monthly_bulletin", month, now=datetime.fromisoformat(now))
    Path(out).write_text(json.dumps({"seconds": time.perf_counter() - started, "charts": len(run.charts)}))


def report_monthly(url: str, work: Path) -> Entry:
    """Rendering the monthly 通报 from a year of data from 300 sources, against a 10 s budget."""
    import os

    _reset(url)
    source = load_registry().source("scjgj_penalty")
    month = date.today()  # the month so far, and the eleven before it
    _land(url, source.id, str(_write_year(work / "report_year.csv", source, month)))
    _timed_build(url, work, "report_build", "--full-refresh")
    out = work / "report.json"
    os.environ["HUIJU_WAREHOUSE_URL"] = url
    # The month still running: its report reads the data as of now (what a later rebuild of it reuses).
    peak = run_isolated("bench.analysis", "_report", str(out), f"{month:%Y-%m}",
                        datetime.now().astimezone().isoformat())
    result = json.loads(out.read_text())
    seconds = result["seconds"]
    return Entry(name="report_monthly", seconds=round(seconds, 3), rows=REPORT_ROWS, anchor="budget",
                 anchor_seconds=REPORT_BUDGET_S, ratio=round(REPORT_BUDGET_S / seconds, 3),
                 peak_rss_mb=round(peak, 1), target_ratio=1.0,
                 note=f"{REPORT_ROWS:,} penalties over twelve months from {REPORT_SOURCES} authorities; workbook with "
                      f"its native charts, {result['charts']} PNG charts, archive, index and e-mail queued")


BENCHMARKS = {"analysis_incremental_1pct": analysis_incremental_1pct, "report_monthly": report_monthly}
