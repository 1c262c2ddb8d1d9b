"""Scale-out proven on this machine: the ingest DAGs run by the real scheduler on CeleryExecutor (Redis broker)
with two worker processes, the warehouse build started by the Assets they publish, and the warehouse equal,
row for row, to the same deliveries landed and built in one process by the CLI.

Redis is a server of the test's own (``redis-server`` on a free loopback port, nothing on disk), so the
broker is isolated from anything else on the machine.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from huiju_demo.generate import generate_submissions
from huiju_demo.scheduler import (
    huiju,
    isolated_environment,
    run_day,
    running_airflow,
    running_celery_workers,
    running_redis,
    worker_task_counts,
)

from huiju.registry import load_registry

# A whole cycle through the scheduler and two workers: minutes on a quiet machine, half an hour on a loaded one
# (CI once took 15 minutes to see the Asset-triggered builds settle while the other cycle ran beside it).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

DAY = dt.date(2026, 11, 18)
ROWS_PER_SOURCE = 40
WORKERS = ("worker1", "worker2")
#: Columns that say when a row was written, not what it holds: they differ between any two runs.
WHEN_WRITTEN = re.compile(r"(_at|_time|_ts|dbt_valid_(from|to)|dbt_updated_at)$")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


def _huiju(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    try:
        return huiju(env, *args, timeout=timeout)
    except RuntimeError as exc:
        pytest.fail(str(exc))


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
    env = isolated_environment(var, url, HUIJU_EXECUTOR="CeleryExecutor", HUIJU_CELERY_BROKER_URL=redis_url,
                       HUIJU_TRANSFORM_TASKS="build")
    with running_airflow(env) as api, running_celery_workers(env, WORKERS, var) as logs:
        # As the portal or a steward asks: a run request per source through the REST API.
        day = run_day(api, [registry.source(sid).ingest_dag_id for sid in inbox_sources], DAY, "scaleout")
    return {"url": url, "var": var, "delivered": delivered, "manifest": manifest, "sources": inbox_sources,
            "transform_runs": day.transform_runs, "instances": day.task_instances,
            "worker_tasks": worker_task_counts(logs)}


@pytest.fixture(scope="module")
def reference(celery_cycle: dict, tmp_path_factory: pytest.TempPathFactory, make_database) -> str:
    """The same deliveries landed, validated and published by the CLI in one process, then one dbt build,
    each with the business day the scheduler's run gave it (from the Celery run's ledger)."""
    var = tmp_path_factory.mktemp("reference_var")
    url = make_database("celery_ref")
    env = isolated_environment(var, url)
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
