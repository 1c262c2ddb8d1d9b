"""The stewards' dashboard's tests: the demo's monitoring data in a warehouse, and the plugin served by real Airflow.

- :func:`seed_demo_monitoring` leaves a warehouse as ``huiju demo`` leaves it for monitoring, by the demo's own
  code: the earlier weeks of 税务局 (one day missed) and 市场监管局 (small daily files), the demo day's
  batches of both (市场监管局's far off its history, with the generator's planted defects quarantined), and
  the two monitoring runs (the day the missed delivery turned overdue, then the morning after the demo
  day). No Airflow, no dbt: the ledger, the quarantine and the 催报 are what the dashboard reads.
- :func:`serving_airflow_plugins` runs ``python -m tests.support.airflow_login serve``: Airflow's own
  auth manager and every plugin app mounted by Airflow's ``init_plugins``, on a loopback port, with a
  token Airflow's JWT signer issued for an admin (the UI's cookie ``_token``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
from huiju_demo.history import ANOMALY_SOURCE, ARRIVAL, MISSING_SOURCE, DemoHistory, seed_history
from huiju_demo.penalties import generate_penalty_file
from huiju_demo.ports import free_port

from huiju.landing import land_file
from huiju.monitoring.monitor import run_monitor
from huiju.registry import Registry
from huiju.settings import TIMEZONE
from huiju.validation import publish_load, validate_load
from huiju.warehouse import role_url

ROOT = Path(__file__).resolve().parents[2]
DAY_ROWS = 200  # the demo's rows per source
TOKEN_LINE = "huiju-test-token: "  # how the served Airflow prints its admin's token (Airflow logs to stdout too)


@dataclass(frozen=True)
class DemoMonitoring:
    """The warehouse the dashboard reads: its URL, the demo day, the morning after, the history, the day's batches;
    the var/ its Great Expectations results are in."""

    url: str
    var: Path
    day: date
    as_of: date
    history: DemoHistory
    day_loads: dict[str, str]  # source id → the demo day's load id


def seed_demo_monitoring(url: str, registry: Registry, folder: Path, day: date, var: Path) -> DemoMonitoring:
    """Land the demo's history and the demo day's two penalty files, validate, and run the monitor twice.

    Great Expectations writes its results under the settings' var/ (the caller's to choose).
    """
    as_of = day + timedelta(days=1)
    arrived = datetime.combine(as_of, ARRIVAL, ZoneInfo(TIMEZONE))
    day_loads = {}
    with psycopg.connect(role_url("landing", url), autocommit=True) as landing, \
            psycopg.connect(role_url("validation", url), autocommit=True) as validation:
        history = seed_history(landing, validation, registry, day, as_of, folder / "history")
        for source_id in (ANOMALY_SOURCE, MISSING_SOURCE):
            source = registry.source(source_id)
            written = generate_penalty_file(registry, source, folder / "day", day, DAY_ROWS, 20261120)
            landed = land_file(landing, registry, source, written.path, data_date=day, received_at=arrived)
            # The anomalous batch in full (Great Expectations' results), the other on verdicts only.
            verdict = validate_load(validation, registry, landed.load_id, run_gx=source_id == ANOMALY_SOURCE)
            if verdict.status == "validated":
                publish_load(validation, landed.load_id)
            day_loads[source_id] = landed.load_id
        for monitored in (history.overdue_on, as_of):
            run_monitor(validation, registry, monitored)
    return DemoMonitoring(url, var, day, as_of, history, day_loads)


@dataclass(frozen=True)
class ServedAirflow:
    """Airflow's API server part that serves plugins, on loopback: its address and an admin's token."""

    url: str
    token: str


def airflow_test_env(home: Path, var: Path, warehouse_url: str) -> dict[str, str]:
    """The environment of an Airflow process of the tests: SQLite metadata, simple auth manager, a test JWT secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "HUIJU_VAR": str(var),
        "HUIJU_WAREHOUSE_URL": warehouse_url,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret-of-this-test-only-0123456789",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    })
    return env


@contextmanager
def serving_airflow_plugins(home: Path, var: Path, warehouse_url: str) -> Iterator[ServedAirflow]:
    """Serve the plugins' apps behind Airflow's auth manager in a process of its own; stopped afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = home / "server.log"
    with log.open("w") as errors:
        process = subprocess.Popen([sys.executable, "-m", "tests.support.airflow_login", "serve", str(port)],
                                   cwd=ROOT, env=airflow_test_env(home, var, warehouse_url), stdout=subprocess.PIPE,
                                   stderr=errors, text=True)
    try:
        token = None
        for line in process.stdout:  # Airflow's own log lines first
            if line.startswith(TOKEN_LINE):
                token = json.loads(line.removeprefix(TOKEN_LINE))["token"]
                break
        if not token:
            raise RuntimeError(f"the Airflow test server did not start: {log.read_text()[-3000:]}")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/huiju-dashboard/", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the Airflow test server died: {log.read_text()[-3000:]}") from None
                time.sleep(0.1)
        yield ServedAirflow(url, token)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
