"""Scale-out proven on this machine: the ingest DAGs run by the real scheduler on CeleryExecutor (Redis broker)
with two worker processes, the warehouse build started by the Assets they publish, and the warehouse equal,
row for row, to the same deliveries landed and built in one process by the CLI.

Redis is a server of the test's own (``redis-server`` on a free loopback port, nothing on disk), so the
broker is isolated from anything else on the machine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from huiju_demo.generate import generate_submissions

from huiju.registry import load_registry
from tests.support.browser import free_port

# A whole cycle through the scheduler and two workers: minutes on a loaded machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

DAY = dt.date(2026, 11, 18)
ROWS_PER_SOURCE = 40
WORKERS = ("worker1", "worker2")
#: Columns that say when a row was written, not what it holds: they differ between any two runs.
WHEN_WRITTEN = re.compile(r"(_at|_time|_ts|dbt_valid_(from|to)|dbt_updated_at)$")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen([shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port),
                               "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis(host="127.0.0.1", port=port).ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline and server.poll() is None, "redis-server did not start"
            time.sleep(0.2)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(10)


def _environment(var: Path, url: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "HUIJU_"))}
    env.update({"HUIJU_VAR": str(var), "HUIJU_WAREHOUSE_URL": url, "HUIJU_DEMO": "1",
                "HUIJU_UI_PORT": str(free_port()), "HUIJU_PORTAL_PORT": str(free_port()), **extra})
    return env


def _huiju(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    done = subprocess.run([sys.executable, "-m", "huiju.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"huiju {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


class AirflowApi:
    """Airflow's REST API as the admin account of a running instance."""

    def __init__(self, address: str, var: Path) -> None:
        password = json.loads((var / "airflow" / "simple_auth_manager_passwords.json").read_text())["admin"]
        token = httpx.post(address + "auth/token", json={"username": "admin", "password": password},
                           timeout=30).json()["access_token"]
        self.client = httpx.Client(base_url=address + "api/v2/", headers={"Authorization": f"Bearer {token}"},
                                   timeout=60)

    def wait_for(self, what: str, ready, within: float = 900.0):
        deadline = time.monotonic() + within
        while True:
            found = ready()
            if found:
                return found
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            print(f"waiting for {what}", file=sys.stderr, flush=True)
            time.sleep(2)

    def runs(self, dag_id: str) -> list[dict]:
        answer = self.client.get(f"dags/{dag_id}/dagRuns", params={"limit": 100})
        return answer.json()["dag_runs"] if answer.status_code == 200 else []


def _worker_tasks(log: Path) -> int:
    """How many task messages this Celery worker received (its log's ``received`` lines)."""
    return len(re.findall(r"Task \S*execute_workload\[[0-9a-f-]+\] received", log.read_text(errors="replace")))


@pytest.fixture(scope="module")
def celery_cycle(tmp_path_factory: pytest.TempPathFactory, make_database, redis_url: str) -> dict:
    registry = load_registry()
    var = tmp_path_factory.mktemp("celery_var")
    url = make_database("celery")
    inbox_sources = sorted(s.id for s in registry.sources.values() if s.channel == "inbox")
    manifest = generate_submissions(registry, var / "inbox", DAY, rows_per_source=ROWS_PER_SOURCE,
                                    sources=inbox_sources)
    delivered = tmp_path_factory.mktemp("delivered")  # what the departments sent, for the reference run
    shutil.copytree(var / "inbox", delivered, dirs_exist_ok=True)
    # One dbt build task: the per-node view (a task per dbt node) is the same build at ~60 dbt start-ups.
    env = _environment(var, url, HUIJU_EXECUTOR="CeleryExecutor", HUIJU_CELERY_BROKER_URL=redis_url,
                       HUIJU_TRANSFORM_TASKS="build")
    address = f"http://127.0.0.1:{env['HUIJU_UI_PORT']}/"
    workers: list[tuple[subprocess.Popen, Path]] = []
    try:
        _huiju(env, "up")
        for name in WORKERS:
            log = var / f"{name}.log"
            with log.open("w") as out:
                workers.append((subprocess.Popen(
                    [sys.executable, "-m", "huiju.cli", "airflow", "celery", "worker", "--queues",
                     "ingest,transform,push,notices", "--concurrency", "2", "--celery-hostname", f"{name}@%h"],
                    env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True), log))
        api = AirflowApi(address, var)
        dag_ids = [registry.source(sid).ingest_dag_id for sid in inbox_sources]
        api.wait_for("the DAGs to be parsed", lambda: all(api.client.get(f"dags/{d}").status_code == 200
                                                          for d in [*dag_ids, "huiju_transform"]), within=300)
        for dag_id in [*dag_ids, "huiju_transform"]:
            assert api.client.patch(f"dags/{dag_id}", json={"is_paused": False}).status_code == 200
        for dag_id in dag_ids:  # as the portal or a steward asks: a run request through the REST API
            asked = api.client.post(f"dags/{dag_id}/dagRuns", json={
                "dag_run_id": f"scaleout__{DAY}", "logical_date": f"{DAY}T00:00:00+08:00"})
            assert asked.status_code in (200, 409), asked.text

        def ingest_done() -> bool:
            runs = [run for dag_id in dag_ids for run in api.runs(dag_id)]
            assert not [r for r in runs if r["state"] == "failed"], [r for r in runs if r["state"] == "failed"]
            return bool(runs) and all(r["state"] == "success" for r in runs) and all(
                any(r["dag_run_id"] == f"scaleout__{DAY}" for r in api.runs(d)) for d in dag_ids)

        api.wait_for("the ingest runs", ingest_done)
        published = max(run["end_date"] for dag_id in dag_ids for run in api.runs(dag_id))

        def built() -> list[dict] | None:
            runs = api.runs("huiju_transform")
            assert not [r for r in runs if r["state"] == "failed"], runs
            finished = [r for r in runs if r["state"] == "success"]
            settled = runs and all(r["state"] in ("success",) for r in runs)
            return runs if settled and max(r["start_date"] for r in finished) > published else None

        transform_runs = api.wait_for("the Asset-triggered warehouse build", built)
        instances = api.client.get("dags/~/dagRuns/~/taskInstances", params={"limit": 1000}).json()["task_instances"]
    finally:
        for process, _ in workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process, _ in workers:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        subprocess.run([sys.executable, "-m", "huiju.cli", "down"], env=env, capture_output=True, timeout=120)
    return {"url": url, "var": var, "delivered": delivered, "manifest": manifest, "sources": inbox_sources,
            "transform_runs": transform_runs, "instances": instances,
            "worker_tasks": {name: _worker_tasks(log) for (_, log), name in zip(workers, WORKERS, strict=True)}}


@pytest.fixture(scope="module")
def reference(celery_cycle: dict, tmp_path_factory: pytest.TempPathFactory, make_database) -> str:
    """The same deliveries landed, validated and published by the CLI in one process, then one dbt build,
    each with the business day the scheduler's run gave it (from the Celery run's ledger)."""
    var = tmp_path_factory.mktemp("reference_var")
    url = make_database("celery_ref")
    env = _environment(var, url)
    with psycopg.connect(celery_cycle["url"]) as conn:
        days = dict(conn.execute("select source_id, data_date::text from ops.loads").fetchall())
    for source_id in celery_cycle["sources"]:
        for path in sorted((celery_cycle["delivered"] / source_id).iterdir()):
            _huiju(env, "land", source_id, str(path), "--day", days[source_id])
    done = subprocess.run([sys.executable, "-c", "from huiju.transform import build; build()"], env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return url


#: Relations that keep history as of each build (snapshots, versions, the builds' own watermarks): the scheduler
#: runs a build per Asset event as batches are published, the CLI one build at the end, so these differ by design.
AS_OF_EACH_BUILD = re.compile(r"^(archive|dbt_state)\.|\.snap_|_versions$|_facts$")


def _tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return [(schema, table) for schema, table in conn.execute(
        "select table_schema, table_name from information_schema.tables"
        # ops: the ledger (times, run ids) is compared through ops.loads below; portal: the accounts `huiju up`
        # makes (random salts), not warehouse data.
        " where table_schema not in ('pg_catalog', 'information_schema', 'ops', 'portal')"
        " and table_schema not like 'pg_%' and table_type = 'BASE TABLE' order by 1, 2")
        if not AS_OF_EACH_BUILD.search(f"{schema}.{table}")]


def _content(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    """The table's rows as sorted text, without the columns that only say when a row was written."""
    columns = [name for (name,) in conn.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s"
        " order by ordinal_position", (schema, table)) if not WHEN_WRITTEN.search(name)]
    selected = ", ".join(f'"{name}"::text' for name in columns)  # as text: -infinity has no Python datetime
    return sorted(str(row) for row in conn.execute(f'select {selected} from "{schema}"."{table}"'))


def test_tasks_ran_on_both_celery_workers(celery_cycle: dict) -> None:
    counts = celery_cycle["worker_tasks"]
    assert all(count > 0 for count in counts.values()), counts
    ingest = [ti for ti in celery_cycle["instances"] if ti["dag_id"].startswith("ingest__")]
    assert ingest and {ti["queue"] for ti in ingest} == {"ingest"}
    # A run that found nothing new skips its publish (no Asset event); every DAG published once.
    assert all(ti["state"] in ("success", "skipped") for ti in ingest), [ti for ti in ingest
                                                                       if ti["state"] not in ("success", "skipped")]
    published = {ti["dag_id"] for ti in ingest if ti["task_id"] == "publish" and ti["state"] == "success"}
    assert published == {ti["dag_id"] for ti in ingest}
    assert len({ti["pid"] for ti in ingest}) > 1


def test_the_warehouse_build_was_started_by_the_assets_the_ingest_runs_published(celery_cycle: dict) -> None:
    assert {run["run_type"] for run in celery_cycle["transform_runs"]} == {"asset_triggered"}


def test_the_warehouse_equals_the_one_built_in_one_process(celery_cycle: dict, reference: str) -> None:
    with psycopg.connect(celery_cycle["url"]) as scaled, psycopg.connect(reference) as single:
        tables = _tables(single)
        assert tables == _tables(scaled)
        assert {schema for schema, _ in tables} >= {"raw", "quarantine", "staging", "credit"}
        different = [f"{schema}.{table}" for schema, table in tables
                     if _content(scaled, schema, table) != _content(single, schema, table)]
        assert not different
        loads = "select source_id, load_id, status, rows_received, rows_accepted, rows_quarantined from ops.loads"
        assert sorted(scaled.execute(loads).fetchall()) == sorted(single.execute(loads).fetchall())
