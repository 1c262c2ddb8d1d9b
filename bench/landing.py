"""Landing benchmarks: `land_csv_1m` and `land_xlsx_100k`, each against an anchor in the same run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
from huiju_demo.bulk import write_penalty_csv, write_penalty_xlsx

from bench.harness import Entry, rows_entry, run_isolated
from huiju.registry import load_registry

CSV_ROWS = 1_000_000
XLSX_ROWS = 100_000


def _land(url: str, source_id: str, path: str, out: str) -> None:
    """Child process: land one file with the platform and record how long it took."""
    from huiju.landing import land_file

    registry = load_registry()
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        result = land_file(conn, registry, registry.source(source_id), Path(path))
        seconds = time.perf_counter() - started
    assert result.outcome == "landed", result
    Path(out).write_text(json.dumps({"seconds": seconds, "rows": result.rows_received}))


def _anchor_copy(url: str, path: str, out: str) -> None:
    """Child process: plain psycopg COPY of the same CSV into an equivalent all-text table."""
    registry = load_registry()
    columns = ", ".join(f'"c{i}" text' for i in range(len(registry.source("scjgj_penalty").columns)))
    with psycopg.connect(url) as conn:
        conn.execute(f"drop table if exists bench_anchor; create table bench_anchor ({columns})")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                "copy bench_anchor from stdin (format csv, header true, encoding 'GB18030')") as copy, \
                open(path, "rb") as data:
            while chunk := data.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        seconds = time.perf_counter() - started
    Path(out).write_text(json.dumps({"seconds": seconds}))


def _anchor_calamine(path: str, out: str) -> None:
    """Child process: python-calamine reading the same workbook into Python rows."""
    from python_calamine import CalamineWorkbook

    started = time.perf_counter()
    rows = CalamineWorkbook.from_path(path).get_sheet_by_index(0).to_python()
    seconds = time.perf_counter() - started
    Path(out).write_text(json.dumps({"seconds": seconds, "rows": len(rows)}))


def _measure(function: str, *args: str, work: Path) -> tuple[dict, float]:
    out = work / f"{function}.json"
    peak = run_isolated("bench.landing", function, *args, str(out))
    return json.loads(out.read_text()), peak


def land_csv_1m(url: str, work: Path) -> Entry:
    """CSV landing of 1,000,000 penalty rows vs plain COPY of the same file."""
    source = load_registry().source("scjgj_penalty")
    path = write_penalty_csv(work / "penalties_1m.csv", source, CSV_ROWS, tag="B")
    anchor, _ = _measure("_anchor_copy", url, str(path), work=work)
    ours, peak = _measure("_land", url, "scjgj_penalty", str(path), work=work)
    return rows_entry("land_csv_1m", ours["rows"], ours["seconds"], "psycopg COPY of the same file",
                      anchor["seconds"], peak, target_ratio=0.5,
                      note="ours: sha256 + content-addressed archive + ledger + COPY, one transaction")


def land_xlsx_100k(url: str, work: Path) -> Entry:
    """Excel landing of 100,000 rows vs python-calamine reading the same file into Python rows."""
    source = load_registry().source("sthjj_penalty")
    path = write_penalty_xlsx(work / "penalties_100k.xlsx", source, XLSX_ROWS, tag="BX", title="生态环境局行政处罚")
    anchor, _ = _measure("_anchor_calamine", str(path), work=work)
    ours, peak = _measure("_land", url, "sthjj_penalty", str(path), work=work)
    return rows_entry("land_xlsx_100k", ours["rows"], ours["seconds"], "python-calamine read into Python rows",
                      anchor["seconds"], peak, target_ratio=0.5)


BENCHMARKS = {"land_csv_1m": land_csv_1m, "land_xlsx_100k": land_xlsx_100k}
