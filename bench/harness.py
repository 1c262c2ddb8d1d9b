"""Running a benchmark in its own process, so its peak memory is its own, and recording the entry."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg


@dataclass
class Entry:
    """One line of var/bench/results.json; ``ratio`` is always "higher is better"."""

    name: str
    seconds: float
    anchor: str
    anchor_seconds: float
    ratio: float
    peak_rss_mb: float
    rows: int | None = None
    rows_per_s: float | None = None
    anchor_rows_per_s: float | None = None
    bytes: int | None = None
    mb_per_s: float | None = None
    anchor_mb_per_s: float | None = None
    target_ratio: float | None = None
    note: str = ""
    #: Further figures a benchmark reports beside its ratio (e.g. daily_cycle's per-task overhead).
    details: dict[str, object] | None = None

    def to_dict(self) -> dict[str, object]:
        """The entry without empty fields."""
        return {k: v for k, v in asdict(self).items() if v is not None and v != ""}


def rows_entry(name: str, rows: int, seconds: float, anchor: str, anchor_seconds: float, peak_rss_mb: float,
               target_ratio: float, note: str = "") -> Entry:
    """An entry for a benchmark measured in rows per second."""
    return Entry(name=name, rows=rows, seconds=round(seconds, 3), rows_per_s=round(rows / seconds),
                 anchor=anchor, anchor_seconds=round(anchor_seconds, 3), anchor_rows_per_s=round(rows / anchor_seconds),
                 ratio=round(anchor_seconds / seconds, 3), peak_rss_mb=round(peak_rss_mb, 1),
                 target_ratio=target_ratio, note=note)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB.

    Read from VmHWM, which starts afresh at exec; ``ru_maxrss`` would carry over the peak of
    the parent the child was forked from.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_isolated(module: str, function: str, *args: str) -> float:
    """Run ``module.function(*args)`` in a fresh interpreter; return the child's peak RSS in MB."""
    code = (f"import json, sys; from {module} import {function}; {function}(*sys.argv[1:]);"
            " from bench.harness import peak_rss_mb; print(json.dumps(peak_rss_mb()))")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode != 0:  # the child's own error, not only its exit status
        raise RuntimeError(f"{module}.{function}{args} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return float(done.stdout.strip().splitlines()[-1])


#: The scratch database's schemas a benchmark's landings write (the ledger, raw, quarantine and what hangs off them).
LEDGER_SCHEMAS = ("raw", "quarantine", "ops", "portal", "push_private")


def fresh_ledger(url: str) -> None:
    """Drop the scratch database's ledger schemas and migrate them again (in a child: migrations run once a
    process). For a benchmark that lands a file an earlier one landed too: the same bytes would be a repeat."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("; ".join(f"drop schema if exists {schema} cascade" for schema in LEDGER_SCHEMAS))
    run_isolated("huiju.warehouse", "migrate", url)


def write_results(entries: list[Entry], path: Path) -> None:
    """Write the results file (a JSON list of entries)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([e.to_dict() for e in entries], ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


#: The outbox's notices and everything that refers to them (the report archive's e-mail), child tables first.
NOTICE_TABLES = ("ops.analysis_reports", "ops.notice_deliveries", "ops.notices")


def forget_notices(conn: psycopg.Connection) -> None:
    """Empty the notices outbox (and the rows that refer to it) that an earlier benchmark of the run filled."""
    conn.execute("; ".join(f"delete from {table}" for table in NOTICE_TABLES))
