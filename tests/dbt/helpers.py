"""Batches into a test warehouse as the platform lands them: land → (validate) → publish.

The dbt tests are about what dbt builds from published batches, so by default a batch is marked
validated without running the validation suites (they have tests of their own and are the
slowest step); ``quarantine`` rows can be written directly to check that dbt leaves them out.
Each step connects as the platform's component does (huiju.warehouse.role_url): landing, then validation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import psycopg
from huiju_demo.generate import generate_submissions
from psycopg.types.json import Jsonb

from huiju.landing import land_file
from huiju.ledger import set_status
from huiju.registry import Registry, load_registry
from huiju.validation import publish_load
from huiju.warehouse import role_url


def land_and_publish(url: str, source_id: str, path: Path, registry: Registry | None = None, *,
                     quarantine_rows: Iterable[int] = ()) -> str:
    """Land one file of ``source_id``, quarantine the given row numbers, publish it; return its load id."""
    registry = registry or load_registry()
    quarantined = list(quarantine_rows)
    with psycopg.connect(role_url("landing", url)) as conn:
        result = land_file(conn, registry, registry.source(source_id), path)
        assert result.outcome == "landed", result
    with psycopg.connect(role_url("validation", url)) as conn:
        with conn.transaction():
            for row_no in quarantined:
                conn.execute("insert into quarantine.rows (load_id, row_no, dataset, violations, reasons)"
                             " values (%s, %s, %s, %s, %s)",
                             (result.load_id, row_no, "admin_penalty", Jsonb([]), "测试隔离"))
            set_status(conn, result.load_id, "validated", rows_accepted=result.rows_received - len(quarantined),
                       rows_quarantined=len(quarantined))
        assert publish_load(conn, result.load_id)
    return result.load_id


def land_demo_day(url: str, inbox: Path, day: date, rows: int = 200) -> int:
    """The demo departments' file submissions of ``day``, landed and published; returns rows landed."""
    registry = load_registry()
    manifest = generate_submissions(registry, inbox, day, rows_per_source=rows)
    for submission in manifest.submissions:
        land_and_publish(url, submission.source_id, submission.path, registry)
    return sum(s.rows_written for s in manifest.submissions)


def register_sources(registry: Registry) -> list[str]:
    """The inbox sources of the datasets other than 行政处罚 (registers, licences, lists, 户籍)."""
    return sorted(sid for sid, source in registry.sources.items()
                  if source.channel == "inbox" and source.dataset != "admin_penalty")


def land_validate_publish(url: str, source_id: str, path: Path, registry: Registry) -> tuple[str, set[tuple]]:
    """Land one file, validate it with the real rules (GX left out), publish it.

    Returns the load id and the quarantine as {(row, frozenset of (field, rule))}.
    """
    from huiju.validation import validate_load

    with psycopg.connect(role_url("landing", url)) as conn:
        result = land_file(conn, registry, registry.source(source_id), path)
        assert result.outcome == "landed", result
    with psycopg.connect(role_url("validation", url)) as conn:
        validate_load(conn, registry, result.load_id, run_gx=False)
        assert publish_load(conn, result.load_id)
        rows = conn.execute("select row_no, violations from quarantine.rows where load_id = %s",
                            (result.load_id,)).fetchall()
    return result.load_id, {(row_no, frozenset((v["field"], v["rule"]) for v in violations))
                            for row_no, violations in rows}
