"""Helpers shared by the REST and SOAP channel tests: isolated source copies, the warehouse, a killable worker.

Each test works on a copy of a demo source under a fresh id, so tests sharing the session's
warehouse never see each other's ledger rows or cursors.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from huiju_demo.generate import generate_records
from huiju_demo.webservice import stamped

from huiju.channels import ConnectionInfo
from huiju.registry import Registry, Source, load_registry

DAY = date(2026, 11, 20)
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def own_config(target: Path) -> Path:
    """A copy of ``config/`` with the datasets, the WSDLs, the item sets and only the web-service (and website)
    departments.

    Other departments' files are left out so these tests depend on nothing but their own sources.
    """
    config = ROOT / "config"
    shutil.copytree(config / "datasets", target / "datasets")
    shutil.copytree(config / "wsdl", target / "wsdl")
    shutil.copytree(config / "item_sets", target / "item_sets")
    (target / "departments").mkdir()
    for name in ("gaj.yaml", "jtj.yaml", "wjw.yaml"):
        shutil.copy(config / "departments" / name, target / "departments" / name)
    return target


def variant(registry: Registry, base_id: str, new_id: str | None = None, **updates: Any) -> tuple[Registry, Source]:
    """A copy of source ``base_id`` under a fresh id, its channel settings changed by ``updates``."""
    source = registry.source(base_id)
    settings = source.channel_settings.model_copy(update=updates)
    new = source.model_copy(update={"id": new_id or f"{base_id}_{uuid.uuid4().hex[:8]}",
                                    "channel_settings": settings})
    return registry.model_copy(update={"sources": {**registry.sources, new.id: new}}), new


def connection_info(conn_id: str, connection: dict[str, Any]) -> ConnectionInfo:
    """What the Airflow task would resolve from the simulator's Connection."""
    return ConnectionInfo(conn_id=conn_id, host=connection["host"], port=connection["port"],
                          login=connection.get("login"), password=connection.get("password"),
                          schema=connection.get("schema"), extra=connection.get("extra") or {})


def landed(pg_url: str, source_id: str, key_field: str = "decision_no") -> list[tuple[str, int, str]]:
    """(natural key, row number, load id) of every raw row the source landed."""
    with psycopg.connect(pg_url) as conn:
        return conn.execute(
            f"select r.{key_field}, r._row_no, r._load_id from raw.admin_penalty r"
            " join ops.loads l on l.load_id = r._load_id where l.source_id = %s", (source_id,)).fetchall()


def loads(pg_url: str, source_id: str) -> list[tuple]:
    """The source's ledger rows (id, status, rows received, warnings), by id."""
    with psycopg.connect(pg_url) as conn:
        return conn.execute("select load_id, status, rows_received, warnings from ops.loads where source_id = %s"
                            " order by load_id", (source_id,)).fetchall()


def cursor_of(pg_url: str, source_id: str) -> dict | None:
    """The source's stored cursor."""
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("select position from ops.cursors where source_id = %s", (source_id,)).fetchone()
    return row[0] if row else None


WORKER = """
import json, sys
from huiju.pipeline import collect
from huiju.registry import load_registry
from tests.support.webservice import DAY, connection_info, variant

base_id, new_id, updates, conn_id, connection = sys.argv[1:6]
registry, source = variant(load_registry(), base_id, new_id, **json.loads(updates))
for result in collect(source.id, DAY, registry, connection_info(conn_id, json.loads(connection))):
    print(result.outcome, result.reference, flush=True)
"""


def start_worker(tmp_path: Path, pg_url: str, base_id: str, new_id: str, updates: dict[str, Any], conn_id: str,
                 connection: dict[str, Any]) -> subprocess.Popen[str]:
    """A separate process running the platform's collect for the source copy (so it can be SIGKILLed)."""
    script = tmp_path / "collect_worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "HUIJU_WAREHOUSE_URL": pg_url, "HUIJU_VAR": str(tmp_path / "var"),
           "HUIJU_CONFIG": os.environ["HUIJU_CONFIG"],
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(script), base_id, new_id, json.dumps(updates), conn_id,
                             json.dumps(connection)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def processes_running(marker: str, within: float = 10.0) -> list[int]:
    """Pids of processes whose command line contains ``marker``, once none is left or ``within`` seconds passed."""
    deadline = time.monotonic() + within
    while True:
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:  # gone meanwhile
                    continue
                if marker in command:
                    pids.append(int(entry.name))
        if not pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


def served_variant(base: str, rows: int, **updates: object) -> tuple:
    """A fresh copy of ``base`` and the records its department serves for DAY (stamped for updated-since).

    Returns (registry, source, served records, the generator's submission with the expected defects).
    """
    registry, source = variant(load_registry(), base, **updates)
    records, submission = generate_records(registry, source, DAY, rows=rows)
    served = stamped(records, source.channel_settings.incremental.updated_at_field, DAY)
    return registry, source, served, submission
