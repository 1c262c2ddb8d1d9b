"""`python -m bench [name ...]`: run the benchmarks and write var/bench/results.json."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import tempfile
from pathlib import Path

import bench
from bench.harness import LEDGER_SCHEMAS, write_results
from huiju import warehouse
from huiju.settings import get_settings


def discover() -> dict:
    """Every ``BENCHMARKS`` mapping (name → function(url, workdir) -> Entry) in the bench modules."""
    found: dict = {}
    for module in pkgutil.iter_modules(bench.__path__):
        if module.name.startswith("_") or module.name == "harness":
            continue
        found.update(getattr(importlib.import_module(f"bench.{module.name}"), "BENCHMARKS", {}))
    return found


def main() -> None:
    """Run the named benchmarks (default: all) in a scratch database and print each entry."""
    # Generated data only: the transform may pseudonymise it under the demo switch (marked demo-), as the tests do.
    os.environ.setdefault("HUIJU_DEMO", "1")
    benchmarks = discover()
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(benchmarks)})")
    args = parser.parse_args()
    unknown = set(args.names) - set(benchmarks)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; known: {', '.join(benchmarks)}")
    args.names = args.names or list(benchmarks)
    server = warehouse.server_url()
    url = warehouse.ensure_database(server, "huiju_bench")
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("; ".join(f"drop schema if exists {schema} cascade" for schema in LEDGER_SCHEMAS))
    warehouse.migrate(url)
    entries = []
    with tempfile.TemporaryDirectory(prefix="huiju-bench-", dir=get_settings().var) as work:
        for name in args.names:
            wait_for_autovacuum(url)
            entry = benchmarks[name](url, Path(work))
            target = "no target" if entry.target_ratio is None else f"target ≥ {entry.target_ratio}"
            print(f"{entry.name}: {entry.seconds:.2f}s vs {entry.anchor_seconds:.2f}s ({entry.anchor}) "
                  f"ratio {entry.ratio:.2f} ({target}), peak {entry.peak_rss_mb:.0f} MB")
            entries.append(entry)
    results = get_settings().var / "bench" / "results.json"
    write_results(entries, results)
    print(f"wrote {results}")


def wait_for_autovacuum(url: str, timeout: float = 120.0) -> None:
    """Let the server's autovacuum finish what the previous benchmark left it (at most ``timeout`` s).

    A benchmark that lands or builds a million rows leaves autovacuum busy on a core for a
    while; the next benchmark would measure that, not itself.
    """
    import time

    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            busy = conn.execute("select count(*) from pg_stat_activity"
                                " where backend_type = 'autovacuum worker'").fetchone()
            if not busy or not busy[0]:
                return
            time.sleep(1)


if __name__ == "__main__":
    main()
