"""`daily_cycle` (issue 24): a day of the demo's inbox sources at 20,000 rows each, run as production runs it.

Ours: the real scheduler (LocalExecutor, started by ``huiju up``): each source's ingest DAG run asked for through
the REST API, the warehouse build started by the Assets they publish (``HUIJU_TRANSFORM_TASKS=build``: one dbt
build task), timed by Airflow's own timestamps from the first ingest run's start to the last build's end. Airflow's
start-up is not counted (a deployment's scheduler is already running).

Anchor: the same day's work in one process, in the same run, on a warehouse of its own: each source's land →
validate → publish → feedback (the functions the ingest tasks call), then the dbt build and its docs (the build
task's). Ratio = one process ÷ scheduler; target ≥ 0.5.

The per-task overhead is each ingest and build task's wall time minus the same work's time in one process
(median and p95, in ``details``): process start-up, imports, the task runner and the API calls around the work.

Beside it, in ``details.celery_two_workers``: the same day on CeleryExecutor (a redis-server of its own as the
broker, two workers of two slots each), its time, its ratio against the same one-process run, and the task instances
each worker ran (no target: the issue asks for it reported).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import psycopg
from huiju_demo.generate import generate_submissions
from huiju_demo.scheduler import (
    ScheduledDay,
    isolated_environment,
    run_day,
    running_airflow,
    running_celery_workers,
    running_redis,
    worker_task_counts,
)

from bench.harness import Entry, peak_rss_mb
from huiju import warehouse
from huiju.registry import load_registry

ROWS_PER_SOURCE = 20_000
DAY = dt.date(2026, 11, 18)
STEPS = ("land", "validate", "publish", "feedback")


def _one_process(day: str, out: str) -> None:
    """Child process (its own var/ and warehouse): the day's work without Airflow, each step timed."""
    from huiju.pipeline import collect, publish_validated, send_feedback, validate_pending
    from huiju.transform import build, generate_docs

    registry = load_registry()
    sources = sorted(s.id for s in registry.sources.values() if s.channel == "inbox")
    steps: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for source_id in sources:
        work = {"land": partial(collect, source_id, dt.date.fromisoformat(day), registry, None),
                "validate": partial(validate_pending, source_id, registry),
                "publish": partial(publish_validated, source_id),
                "feedback": partial(send_feedback, source_id, registry, None)}
        steps[source_id] = {}
        for step in STEPS:
            begun = time.perf_counter()
            work[step]()
            steps[source_id][step] = time.perf_counter() - begun
    begun = time.perf_counter()
    build()
    generate_docs()
    build_seconds = time.perf_counter() - begun
    Path(out).write_text(json.dumps({"seconds": time.perf_counter() - started, "steps": steps,
                                     "build": build_seconds, "peak_rss_mb": peak_rss_mb()}))


def _fresh_warehouse(name: str) -> str:
    """An empty database ``name`` (and none of the databases a platform made beside it before); its admin URL."""
    server = warehouse.server_url()
    with psycopg.connect(server, autocommit=True) as conn:
        beside = [row[0] for row in conn.execute("select datname from pg_database where starts_with(datname, %s)",
                                                 (f"{name}_",))]
        for database in (name, *beside):
            conn.execute(f'drop database if exists "{database}" with (force)')
    return warehouse.ensure_database(server, name)


def _seconds(instance: dict) -> float:
    start, end = (dt.datetime.fromisoformat(instance[key].replace("Z", "+00:00")) for key in ("start_date", "end_date"))
    return (end - start).total_seconds()


def _on_celery(delivered: Path, var: Path, dag_ids: list[str]) -> tuple[ScheduledDay, dict[str, int]]:
    """The same day through the scheduler on CeleryExecutor (a redis-server of its own, two workers); the tasks
    each worker received."""
    shutil.copytree(delivered, var / "inbox")
    with running_redis(var) as broker:
        env = isolated_environment(var, _fresh_warehouse("huiju_bench_cycle_celery"), HUIJU_TRANSFORM_TASKS="build",
                                   HUIJU_EXECUTOR="CeleryExecutor", HUIJU_CELERY_BROKER_URL=broker)
        with running_airflow(env) as api, running_celery_workers(env, ("worker1", "worker2"), var) as logs:
            day = run_day(api, dag_ids, DAY, "bench")
        return day, worker_task_counts(logs)


def daily_cycle(url: str, work: Path) -> Entry:
    """The inbox sources' day at 20,000 rows each through the scheduler vs the same work in one process."""
    registry = load_registry()
    sources = sorted(s.id for s in registry.sources.values() if s.channel == "inbox")
    delivered = work / "daily_cycle_inbox"
    generate_submissions(registry, delivered, DAY, rows_per_source=ROWS_PER_SOURCE, sources=sources)
    rows = ROWS_PER_SOURCE * len(sources)

    one_var = work / "daily_cycle_one"
    shutil.copytree(delivered, one_var / "inbox")
    out = work / "daily_cycle_one.json"
    env = isolated_environment(one_var, _fresh_warehouse("huiju_bench_cycle_one"))
    subprocess.run([sys.executable, "-c", "import sys; from bench.daily_cycle import _one_process;"
                    " _one_process(*sys.argv[1:])", DAY.isoformat(), str(out)], env=env, check=True)
    one = json.loads(out.read_text())

    scheduled_var = work / "daily_cycle_scheduled"
    shutil.copytree(delivered, scheduled_var / "inbox")
    env = isolated_environment(scheduled_var, _fresh_warehouse("huiju_bench_cycle_scheduled"),
                               HUIJU_TRANSFORM_TASKS="build")
    dag_ids = [registry.source(sid).ingest_dag_id for sid in sources]
    with running_airflow(env) as api:
        day = run_day(api, dag_ids, DAY, "bench")
    celery, celery_tasks = _on_celery(delivered, work / "daily_cycle_celery", dag_ids)

    source_of = {registry.source(sid).ingest_dag_id: sid for sid in sources}
    overheads = [_seconds(ti) - one["steps"][source_of[ti["dag_id"]]][ti["task_id"]]
                 for ti in day.task_instances if ti["dag_id"] in source_of and ti["task_id"] in STEPS
                 and ti["state"] == "success"]
    overheads += [_seconds(ti) - one["build"] for ti in day.task_instances
                  if ti["dag_id"] == "huiju_transform" and ti["task_id"] == "dbt_build"]
    overheads.sort()
    details = {"sources": len(sources), "rows_per_source": ROWS_PER_SOURCE, "executor": "LocalExecutor",
               "ingest_runs": len(day.ingest_runs), "warehouse_builds": len(day.transform_runs),
               "one_process_build_seconds": round(one["build"], 1),
               "one_process_step_median_s": {step: round(statistics.median(s[step] for s in one["steps"].values()), 2)
                                             for step in STEPS},
               "task_overhead_median_s": round(statistics.median(overheads), 2),
               "task_overhead_p95_s": round(overheads[min(len(overheads) - 1, int(0.95 * len(overheads)))], 2),
               "tasks_measured": len(overheads),
               "celery_two_workers": {"seconds": round(celery.seconds, 1),
                                      "ratio": round(one["seconds"] / celery.seconds, 3),
                                      "tasks_by_worker": celery_tasks}}
    return Entry(name="daily_cycle", seconds=round(day.seconds, 1), rows=rows, rows_per_s=round(rows / day.seconds),
                 anchor="the same day in one process (land → validate → publish → feedback per source, dbt build)",
                 anchor_seconds=round(one["seconds"], 1), anchor_rows_per_s=round(rows / one["seconds"]),
                 ratio=round(one["seconds"] / day.seconds, 3), peak_rss_mb=round(one["peak_rss_mb"], 1),
                 target_ratio=0.5, details=details,
                 note="scheduler: first ingest run's start → last Asset-triggered build's end; Airflow's start-up "
                      "not counted. The same day on CeleryExecutor with two workers (two slots each) in details.")


BENCHMARKS = {"daily_cycle": daily_cycle}
