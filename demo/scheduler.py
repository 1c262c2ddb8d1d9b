"""A day run as production runs it: a running Airflow asked for the ingest runs through its REST API, the
warehouse build started by the Assets they publish (issue 24), never ``airflow dags test``.

Used by the scale-out test (CeleryExecutor, two workers) and the ``daily_cycle`` benchmark (LocalExecutor).
Only HTTP: nothing here imports Airflow. The Airflow instance is the one ``huiju up`` starts for the
environment given (its ``HUIJU_VAR``, warehouse and ports).
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import redis
from huiju_demo.ports import free_port

from huiju import credentials
from huiju.private_files import private_dir, write_private

T = TypeVar("T")

#: Long enough for a whole day on a loaded 2-core machine; a hang still ends, with what was awaited named.
WAIT_SECONDS = 1800.0
POLL_SECONDS = 2.0


class AirflowApi:
    """Airflow's REST API (``/api/v2``) as the admin account of a running instance."""

    def __init__(self, address: str, var: Path) -> None:
        password = json.loads((var / "airflow" / "simple_auth_manager_passwords.json").read_text())["admin"]
        token = httpx.post(address + "auth/token", json={"username": "admin", "password": password},
                           timeout=30).json()["access_token"]
        self.client = httpx.Client(base_url=address + "api/v2/", headers={"Authorization": f"Bearer {token}"},
                                   timeout=60)

    def wait_for(self, what: str, ready: Callable[[], T | None], within: float = WAIT_SECONDS) -> T:
        """Poll ``ready`` until it returns something truthy; fail after ``within`` seconds naming ``what``."""
        deadline = time.monotonic() + within
        while True:
            found = ready()
            if found:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {within:.0f}s waiting for {what}")
            print(f"waiting for {what}", file=sys.stderr, flush=True)
            time.sleep(POLL_SECONDS)

    def runs(self, dag_id: str) -> list[dict]:
        """The DAG's runs (none when the DAG is not known yet)."""
        answer = self.client.get(f"dags/{dag_id}/dagRuns", params={"limit": 100})
        return answer.json()["dag_runs"] if answer.status_code == 200 else []

    def task_instances(self) -> list[dict]:
        """Every task instance of every run."""
        return self.client.get("dags/~/dagRuns/~/taskInstances", params={"limit": 1000}).json()["task_instances"]


def isolated_environment(var: Path, url: str, **extra: str) -> dict[str, str]:
    """This process's environment for a platform of its own: its ``var/``, its warehouse ``url``, free ports, the
    demo switch, and none of this process's Airflow or Huiju settings but the roles' passwords (the roles are the
    server's, shared with every other platform on it: a ``var/`` of its own would give them new passwords)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AIRFLOW", "HUIJU_")) or key.startswith(credentials.environment_name(""))}
    # The passwords this checkout generated into its var/secrets (none set in the environment) go along too.
    generated = credentials.secrets_dir() / credentials.PASSWORDS_FILE
    copied = private_dir(var / "secrets") / credentials.PASSWORDS_FILE
    if generated.exists() and not copied.exists():
        write_private(copied, generated.read_text(encoding="utf-8"))
    env.update({"HUIJU_VAR": str(var), "HUIJU_WAREHOUSE_URL": url, "HUIJU_DEMO": "1",
                "HUIJU_UI_PORT": str(free_port()), "HUIJU_PORTAL_PORT": str(free_port()), **extra})
    return env


def huiju(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    """``huiju <args>`` in a process with ``env``; its output, or an error with both streams."""
    done = subprocess.run([sys.executable, "-m", "huiju.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"huiju {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


@contextmanager
def running_airflow(env: dict[str, str]) -> Iterator[AirflowApi]:
    """Airflow's services started by ``huiju up`` for ``env`` (stopped by ``huiju down`` on the way out)."""
    try:
        huiju(env, "up")
        yield AirflowApi(f"http://127.0.0.1:{env['HUIJU_UI_PORT']}/", Path(env["HUIJU_VAR"]))
    finally:
        subprocess.run([sys.executable, "-m", "huiju.cli", "down"], env=env, capture_output=True, timeout=120)


@contextmanager
def running_redis(folder: Path) -> Iterator[str]:
    """A redis-server of its own on a free loopback port (keeping nothing on disk), as Celery's broker; its URL."""
    port = free_port()
    server = subprocess.Popen([shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port),
                               "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                redis.Redis(host="127.0.0.1", port=port).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.2)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)


#: The queues a worker of the scale-out takes: every kind of work (``huiju_airflow.dag_factory``'s queues).
ALL_QUEUES = "ingest,transform,push,notices"


@contextmanager
def running_celery_workers(env: dict[str, str], names: tuple[str, ...], logs: Path,
                           concurrency: int = 2) -> Iterator[dict[str, Path]]:
    """Celery workers of Airflow (``airflow celery worker``), one process each, on every queue; their logs by
    name. Stopped (SIGTERM, then SIGKILL after a minute) on the way out."""
    workers: list[subprocess.Popen] = []
    paths = {name: logs / f"{name}.log" for name in names}
    try:
        for name, log in paths.items():
            with log.open("w") as out:
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "huiju.cli", "airflow", "celery", "worker", "--queues", ALL_QUEUES,
                     "--concurrency", str(concurrency), "--celery-hostname", f"{name}@%h"],
                    env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        yield paths
    finally:
        for process in workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in workers:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def worker_task_counts(logs: dict[str, Path]) -> dict[str, int]:
    """How many task messages each Celery worker received (its log's ``received`` lines), by worker name."""
    received = re.compile(r"Task \S*execute_workload\[[0-9a-f-]+\] received")
    return {name: len(received.findall(log.read_text(errors="replace"))) for name, log in logs.items()}


@dataclass(frozen=True)
class ScheduledDay:
    """What the scheduler did for one day: the runs, their task instances, and how long it took."""

    ingest_runs: list[dict]
    transform_runs: list[dict]
    task_instances: list[dict]
    #: From the first ingest run's start to the end of the last warehouse build (Airflow's own timestamps).
    seconds: float


def _moment(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def run_day(api: AirflowApi, dag_ids: list[str], day: dt.date, run_id_prefix: str = "scheduled") -> ScheduledDay:
    """Ask for each ingest DAG's run, as the portal or a steward asks, and wait for the warehouse build the Assets
    they publish start (``huiju_transform``, never asked for). Fails on any failed run.

    Each run is for the interval its DAG has due (the business day the tasks see), or for ``day`` when the DAG has
    none (no schedule); the run ids are ``<run_id_prefix>__<day>``."""
    api.wait_for("the DAGs to be parsed", lambda: all(api.client.get(f"dags/{d}").status_code == 200
                                                      for d in [*dag_ids, "huiju_transform"]), within=600)
    run_id = f"{run_id_prefix}__{day}"
    # Asked for while the DAGs are still paused, each for the interval the scheduler has due next: unpaused, a DAG
    # runs its latest interval, unless a run for it exists. Asked for any other day, every source would run twice
    # (the first run landing the day's deliveries, ours finding nothing new): twice the tasks, none of it work.
    for dag_id in dag_ids:
        due = api.client.get(f"dags/{dag_id}").json().get("next_dagrun_logical_date")
        asked = api.client.post(f"dags/{dag_id}/dagRuns", json={"dag_run_id": run_id,
                                                                 "logical_date": due or f"{day}T00:00:00+08:00"})
        if asked.status_code not in (200, 409):
            raise RuntimeError(f"could not ask for {dag_id}: {asked.status_code} {asked.text[:300]}")
    for dag_id in [*dag_ids, "huiju_transform"]:
        answer = api.client.patch(f"dags/{dag_id}", json={"is_paused": False})
        if answer.status_code != 200:
            raise RuntimeError(f"could not unpause {dag_id}: {answer.status_code} {answer.text[:300]}")

    def ingest_done() -> list[dict] | None:
        runs = [run for dag_id in dag_ids for run in api.runs(dag_id)]
        failed = [r for r in runs if r["state"] == "failed"]
        if failed:
            raise RuntimeError(f"ingest runs failed: {failed}")
        ours = [r for r in runs if r["dag_run_id"] == run_id]
        return runs if len(ours) == len(dag_ids) and all(r["state"] == "success" for r in runs) else None

    # A DAG whose due interval could not be asked for runs it too (and may land the day's deliveries itself):
    # every run of the ingest DAGs is the day's.
    ingest_runs = api.wait_for("the ingest runs", ingest_done)
    # When the last Asset event was emitted: its publish task's end. The run's own end comes later, in the same
    # scheduler loop that may already have started the build the event triggered.
    published = max(_moment(ti["end_date"]) for ti in api.task_instances()
                    if ti["dag_id"] in dag_ids and ti["task_id"] == "publish" and ti["state"] == "success")

    def built() -> list[dict] | None:
        runs = api.runs("huiju_transform")
        if any(r["state"] == "failed" for r in runs):
            raise RuntimeError(f"a warehouse build failed: {runs}")
        settled = runs and all(r["state"] == "success" for r in runs)
        return runs if settled and max(_moment(r["start_date"]) for r in runs) > published else None

    transform_runs = api.wait_for("the Asset-triggered warehouse build", built)
    started = min(_moment(r["start_date"]) for r in ingest_runs)
    ended = max(_moment(r["end_date"]) for r in transform_runs)
    return ScheduledDay(ingest_runs=ingest_runs, transform_runs=transform_runs,
                        task_instances=api.task_instances(), seconds=(ended - started).total_seconds())
