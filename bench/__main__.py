"""`python -m bench [name ...]`: run the benchmarks and write var/bench/results.json."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench import landing
from bench.harness import write_results
from huiju import warehouse
from huiju.settings import get_settings

BENCHMARKS = {"land_csv_1m": landing.land_csv_1m, "land_xlsx_100k": landing.land_xlsx_100k}


def main() -> None:
    """Run the named benchmarks (default: all) in a scratch database and print each entry."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; known: {', '.join(BENCHMARKS)}")
    args.names = args.names or list(BENCHMARKS)
    server = warehouse.server_url()
    url = warehouse.ensure_database(server, "huiju_bench")
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop schema if exists raw cascade; drop schema if exists quarantine cascade;"
                     " drop schema if exists ops cascade")
    warehouse.migrate(url)
    entries = []
    with tempfile.TemporaryDirectory(prefix="huiju-bench-", dir=get_settings().var) as work:
        for name in args.names:
            entry = BENCHMARKS[name](url, Path(work))
            print(f"{entry.name}: {entry.seconds:.2f}s vs {entry.anchor_seconds:.2f}s ({entry.anchor}) "
                  f"ratio {entry.ratio:.2f} (target ≥ {entry.target_ratio}), peak {entry.peak_rss_mb:.0f} MB")
            entries.append(entry)
    results = get_settings().var / "bench" / "results.json"
    write_results(entries, results)
    print(f"wrote {results}")


if __name__ == "__main__":
    main()
