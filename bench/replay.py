"""Replay benchmark: `replay_1m`, the archived 1,000,000-row CSV landed again into an empty raw table.

The anchor is the same file's first landing, in the same run, into the same (emptied) table:
replay goes through the same path (:func:`huiju.replay.replay_load` → ``land_file`` on the
archived original), so the target is parity (ratio ≥ 0.9). Validation is left out of both.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
from huiju_connectors.files import digest_file
from huiju_demo.bulk import write_penalty_csv

from bench.harness import Entry, rows_entry, run_isolated
from huiju.ledger import make_load_id
from huiju.registry import load_registry

ROWS = 1_000_000
SOURCE = "scjgj_penalty"


def _empty(url: str) -> None:
    """The raw table and the ledger as a warehouse restored from nothing has them (the archive stays)."""
    with psycopg.connect(url) as conn:
        if conn.execute("select to_regclass('raw.admin_penalty')").fetchone()[0] is not None:
            conn.execute("truncate raw.admin_penalty")
        conn.execute("truncate ops.loads cascade")
        conn.commit()
        conn.autocommit = True
        conn.execute("checkpoint")  # neither run pays for the other's dirty pages


def _replay(url: str, load_id: str, out: str) -> None:
    """Child process: the same load replayed from the archive alone (its manifest and original)."""
    from huiju.replay import replay_load, select_manifests

    registry = load_registry()
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        (manifest,) = select_manifests(load_id=load_id)
        result = replay_load(conn, registry, manifest)
        seconds = time.perf_counter() - started
    assert result.outcome == "landed", result
    Path(out).write_text(json.dumps({"seconds": seconds, "rows": result.rows_received}))


def replay_1m(url: str, work: Path) -> Entry:
    """Replaying the archived 1M-row CSV into an empty raw table vs landing it the first time."""
    source = load_registry().source(SOURCE)
    path = write_penalty_csv(work / "penalties_replay_1m.csv", source, ROWS, tag="RP")
    _empty(url)
    first_out, replay_out = work / "replay_first.json", work / "replay_again.json"
    run_isolated("bench.landing", "_land", url, SOURCE, str(path), str(first_out))  # the first landing
    first = json.loads(first_out.read_text())
    _empty(url)
    load_id = make_load_id(SOURCE, digest_file(path).sha256)
    peak = run_isolated("bench.replay", "_replay", url, load_id, str(replay_out))
    again = json.loads(replay_out.read_text())
    assert again["rows"] == first["rows"] == ROWS
    return rows_entry("replay_1m", again["rows"], again["seconds"], "the same file's first landing (land_file)",
                      first["seconds"], peak, target_ratio=0.9,
                      note="ours: manifest read + land_file on the archived original into an emptied raw table")


BENCHMARKS = {"replay_1m": replay_1m}
