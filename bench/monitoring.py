"""Monitoring benchmark: `reminders_300_sources`.

300 sources of 30 departments (180 daily files, 60 monthly, 30 weekly, 30 continuous REST feeds), each
owing since 1 September 2026, with about 85% of their periods delivered (some late, some held) —
about 15,000 batches in ``ops.loads`` (untimed). Timed: the hourly monitoring run as of 7 December 2026
(:func:`huiju.monitoring.monitor.run_monitor`, ``full=False``): every obligation the 催报 ladder can
act on computed in working days, its ledger rows rebuilt, and every notice the day calls for queued,
with an empty outbox, so every notice is new. Budget 2 s; ratio = budget ÷ median of three runs. The
day's first run (the whole ledger rebuilt) and a rerun with nothing new are in the note.
"""

from __future__ import annotations

import hashlib
import random
import statistics
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from bench.harness import Entry, forget_notices, peak_rss_mb
from huiju.monitoring.monitor import run_monitor
from huiju.monitoring.obligations import obligations
from huiju.registry import Department, Obligation, Registry, Source, load_registry
from huiju.workdays import work_calendar

AS_OF = date(2026, 12, 7)
SINCE = date(2026, 9, 1)
BUDGET = 2.0
SHANGHAI = ZoneInfo("Asia/Shanghai")


def bench_registry(since: date = SINCE) -> Registry:
    """300 sources in 30 departments, each owing since ``since``."""
    real = load_registry()
    kinds = ["daily"] * 6 + ["monthly"] * 2 + ["weekly", "rest"]
    departments = {f"b{d:02d}": Department(code=f"b{d:02d}", name=f"基准单位{d:02d}",
                                           contacts=({"name": "联系人", "email": f"b{d:02d}@example.gov.cn"},),
                                           leader={"name": "领导", "title": "副局长",
                                                   "email": f"b{d:02d}-leader@example.gov.cn"})
                   for d in range(30)}
    sources = {}
    for index in range(300):
        kind = kinds[index % len(kinds)]
        channel = "rest" if kind == "rest" else "inbox"
        sources[f"bench_{index:03d}"] = Source(
            id=f"bench_{index:03d}", title=f"基准数据项{index:03d}", dataset="admin_penalty", channel=channel,
            format=None if channel == "rest" else "csv", columns={"当事人名称": "party_name"},
            cadence="daily" if kind == "rest" else kind, department=f"b{index // 10:02d}",
            obligation=Obligation(since=since))
    return Registry(datasets=real.datasets, departments=departments, sources=sources)


def deliver(conn: psycopg.Connection, registry: Registry) -> int:
    """About 85% of every period owed, delivered once (some late, some held); returns the batches written."""
    rng = random.Random(300)
    rows = []
    for due in obligations(registry, AS_OF, cal=work_calendar()).dues:
        fate = rng.random()
        if fate < 0.15 or due.due_date is None:
            continue
        day = due.period.start if due.rule.continuous else due.period.end + timedelta(days=1)
        if fate > 0.95 and not due.rule.continuous and due.rule.period != "day":
            day = due.late_after + timedelta(days=2)
        received = datetime.combine(day, clock(9), SHANGHAI)
        digest = hashlib.sha256(f"{due.rule.source_id}|{due.period.key}".encode()).hexdigest()
        held = 0.9 < fate <= 0.95
        rows.append((f"{due.rule.source_id}-{digest[:16]}", due.rule.source_id, due.rule.department, digest,
                     "held" if held else "published", 100, None if held else 100, 60 if held else 0, received))
    with conn.cursor() as cur:
        cur.executemany(
            "insert into ops.loads (load_id, source_id, department, dataset, channel, reference, sha256, bytes,"
            " status, rows_received, rows_accepted, rows_quarantined, received_at)"
            " values (%s, %s, %s, 'admin_penalty', 'inbox', 'bench.csv', %s, 1, %s, %s, %s, %s, %s)", rows)
    return len(rows)


def reminders_300_sources(url: str, work: Path) -> Entry:
    """The hourly monitoring run for 300 sources with an empty outbox, median of three; the daily full rebuild
    and a rerun with nothing new are measured for the note."""
    registry = bench_registry()
    with psycopg.connect(url) as conn:
        forget_notices(conn)
        conn.execute("delete from ops.submissions; delete from ops.loads where source_id like 'bench\\_%'")
        batches = deliver(conn, registry)
        conn.commit()
        started = time.perf_counter()
        full = run_monitor(conn, registry, AS_OF, full=True)  # the day's first run: the whole ledger
        conn.commit()
        full_seconds = time.perf_counter() - started
        seconds, queued, periods = [], 0, 0
        for _ in range(3):
            forget_notices(conn)
            conn.commit()
            started = time.perf_counter()
            report = run_monitor(conn, registry, AS_OF, full=False)
            conn.commit()
            seconds.append(time.perf_counter() - started)
            queued, periods = len(report.reminders.queued), report.periods
        started = time.perf_counter()
        run_monitor(conn, registry, AS_OF, full=False)  # everything already queued
        conn.commit()
        again = time.perf_counter() - started
    median = statistics.median(seconds)
    return Entry(name="reminders_300_sources", seconds=round(median, 3), anchor="budget", anchor_seconds=BUDGET,
                 ratio=round(BUDGET / median, 3), peak_rss_mb=round(peak_rss_mb(), 1), target_ratio=1.0,
                 note=f"hourly run: {periods} periods the ladder can act on (of {full.periods} owed), {batches} "
                      f"batches, {queued} notices queued; runs: {', '.join(f'{s:.2f}' for s in seconds)} s; "
                      f"rerun with nothing new: {again:.2f} s; the day's full ledger rebuild + notices: "
                      f"{full_seconds:.2f} s")


BENCHMARKS = {"reminders_300_sources": reminders_300_sources}
