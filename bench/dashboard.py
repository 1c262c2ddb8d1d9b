"""Dashboard benchmark: `dashboard_300_sources`.

A year of ledger for 300 generated sources (``bench.monitoring``'s 300 sources of 30 departments, owing since
1 December 2025, ~85% of their periods delivered, some late, some held; the ledger and the 催报 notices built
by the monitoring run as of 7 December 2026, untimed). Timed, each the median of :data:`RUNS` requests
through the plugin's app (``huiju_airflow.dashboard``: a connection as ``huiju_dashboard``, the figures,
the page rendered; Airflow's login check is left out, it is not the dashboard's): the overview page (``/``)
and a department's page (``/departments/b07``). The anchor of each is the same page's SQL — the statements
that request ran, recorded while it ran — replayed alone on an open connection, in the same run. Budget:
300 ms a page; target ratio (anchor ÷ page) ≥ 0.5. Entry ``seconds`` / ``anchor_seconds``: the two pages added.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import Entry, forget_notices, peak_rss_mb
from bench.monitoring import AS_OF, bench_registry, deliver
from huiju.monitoring.monitor import run_monitor

SINCE = date(2025, 12, 1)  # a year of periods before AS_OF
RUNS = 15
BUDGET = 0.300  # seconds a page, at the median
DEPARTMENT = "b07"


@contextmanager
def recorded_statements() -> Iterator[list[tuple[Any, Any]]]:
    """Every statement (query, parameters) psycopg executes in this process meanwhile."""
    statements: list[tuple[Any, Any]] = []
    original = psycopg.Cursor.execute

    def execute(self: psycopg.Cursor, query: Any, params: Any = None, **kwargs: Any) -> Any:
        statements.append((query, params))
        return original(self, query, params, **kwargs)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    try:
        yield statements
    finally:
        psycopg.Cursor.execute = original  # type: ignore[method-assign]


def median_seconds(action: Callable[[], object], runs: int = RUNS) -> tuple[float, list[float]]:
    """The median of ``runs`` timings of ``action`` (after one warm-up), and all of them."""
    action()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), timings


def dashboard_300_sources(url: str, work: Path) -> Entry:
    """The overview and a department's page for 300 sources with a year of ledger, against their SQL alone."""
    registry = bench_registry(SINCE)
    with psycopg.connect(url) as conn:
        forget_notices(conn)
        conn.execute("delete from ops.submissions; delete from quarantine.rows; delete from ops.load_anomalies;"
                     " delete from ops.loads where source_id like 'bench\\_%'")
        batches = deliver(conn, registry)
        conn.commit()
        report = run_monitor(conn, registry, AS_OF, full=True)
        conn.commit()
        conn.execute("analyze")
    # why: the plugin's app imports Airflow's API server (its auth manager): a home of the benchmark's own
    os.environ.setdefault("AIRFLOW_HOME", str(work / "airflow"))
    from fastapi.testclient import TestClient  # why: only this benchmark serves pages
    from huiju_airflow.auth import airflow_user  # why: see above
    from huiju_airflow.dashboard import create_dashboard_app  # why: see above

    app = create_dashboard_app(registry, warehouse_url=url)
    app.dependency_overrides[airflow_user] = lambda: None  # Airflow's login is not what is measured
    pages = {"overview": "/", "department": f"/departments/{DEPARTMENT}"}
    results = {}
    with TestClient(app) as client, psycopg.connect(url) as conn:
        for name, path in pages.items():
            def request(path: str = path) -> None:
                response = client.get(path)
                assert response.status_code == 200, response.text[:500]

            with recorded_statements() as statements:
                request()
            assert statements, f"the {name} page ran no SQL"

            def replay(statements: list = statements) -> None:
                with conn.cursor() as cur:
                    for query, params in statements:
                        cur.execute(query, params)
                        if cur.description is not None:
                            cur.fetchall()

            page, timings = median_seconds(request)
            anchor, _ = median_seconds(replay)
            results[name] = (page, anchor, len(statements), timings)
    seconds = sum(page for page, *_ in results.values())
    anchor_seconds = sum(anchor for _, anchor, *_ in results.values())
    ratio = min(anchor / page for page, anchor, *_ in results.values())
    slowest = max(page for page, *_ in results.values())
    note = "; ".join(f"{name}: {page * 1000:.0f} ms median (SQL alone {anchor * 1000:.0f} ms, {count} statements,"
                     f" budget {BUDGET * 1000:.0f} ms)" for name, (page, anchor, count, _) in results.items())
    return Entry(name="dashboard_300_sources", seconds=round(seconds, 4), anchor="the pages' SQL alone",
                 anchor_seconds=round(anchor_seconds, 4), ratio=round(ratio, 3), peak_rss_mb=round(peak_rss_mb(), 1),
                 rows=report.periods, target_ratio=0.5,
                 note=f"{report.periods} periods owed, {batches} batches; {note}; "
                      f"{'within' if slowest <= BUDGET else 'OVER'} budget; ratio = the lower page's")


BENCHMARKS = {"dashboard_300_sources": dashboard_300_sources}
