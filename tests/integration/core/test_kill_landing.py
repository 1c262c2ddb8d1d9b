"""A load killed with SIGKILL mid-COPY leaves nothing; the rerun lands exactly one copy of the file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from huiju_connectors.files import digest_file
from huiju_demo.bulk import write_penalty_csv

from huiju.landing import land_file
from huiju.ledger import make_load_id
from huiju.registry import load_registry

ROWS = 300_000


def _copy_progress(conn: psycopg.Connection, database: str) -> int:
    # Only the landing's COPY into raw: the process's start-up may COPY too (its migrations' reference data).
    row = conn.execute("select coalesce(max(tuples_processed), 0) from pg_stat_progress_copy"
                       " where datname = %s and relid::regclass::text = 'raw.admin_penalty'", (database,)).fetchone()
    return int(row[0])


def _land_in_subprocess(pg_url: str, path: Path) -> subprocess.Popen:
    env = {**os.environ, "HUIJU_WAREHOUSE_URL": pg_url}
    return subprocess.Popen([sys.executable, "-m", "huiju.cli", "land", "scjgj_penalty", str(path), "--land-only"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkill_mid_copy_then_rerun_lands_exactly_once(pg_url: str, tmp_path: Path) -> None:
    registry = load_registry()
    source = registry.source("scjgj_penalty")
    path = write_penalty_csv(tmp_path / "big.csv", source, ROWS, tag="K")
    load_id = make_load_id(source.id, digest_file(path).sha256)
    database = psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"]
    with psycopg.connect(pg_url, autocommit=True) as watcher:
        for kill_after_rows in (1, 60_000, 180_000):
            process = _land_in_subprocess(pg_url, path)
            deadline = time.monotonic() + 120
            while _copy_progress(watcher, database) < kill_after_rows:
                assert process.poll() is None, "the load finished before it could be killed: make the file larger"
                assert time.monotonic() < deadline, "COPY never started"
                time.sleep(0.005)
            process.send_signal(signal.SIGKILL)
            process.wait()
            # The server aborts the dead client's transaction: nothing of the load is visible.
            deadline = time.monotonic() + 30
            while _copy_progress(watcher, database) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert watcher.execute("select count(*) from raw.admin_penalty where _load_id = %s",
                                   (load_id,)).fetchone()[0] == 0
            assert watcher.execute("select count(*) from ops.loads where load_id = %s",
                                   (load_id,)).fetchone()[0] == 0

    with psycopg.connect(pg_url) as conn:
        result = land_file(conn, registry, source, path)
        assert (result.outcome, result.rows_received) == ("landed", ROWS)
        rerun = land_file(conn, registry, source, path)
        assert rerun.outcome == "already_landed"
        count, distinct, first, last = conn.execute(
            "select count(*), count(distinct decision_no), min(_row_no), max(_row_no) from raw.admin_penalty"
            " where _load_id = %s", (load_id,)).fetchone()
        assert (count, distinct, first, last) == (ROWS, ROWS, 2, ROWS + 1)
