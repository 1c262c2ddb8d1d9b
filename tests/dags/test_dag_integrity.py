"""DAG integrity: every DAG file imports cleanly, fast, with no connections, DB or network at import.

The DagBag is built in a fresh interpreter whose sockets and database drivers refuse to
connect, with an empty AIRFLOW_HOME (no connections, no variables).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"

PROBE = textwrap.dedent("""
    import json, socket, sys, time

    def refuse(*args, **kwargs):
        raise RuntimeError("network or database access while parsing DAGs")

    socket.socket.connect = refuse
    socket.create_connection = refuse
    import psycopg, psycopg2
    psycopg.connect = refuse
    psycopg2.connect = refuse

    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    seconds = time.perf_counter() - started
    print(json.dumps({
        "seconds": seconds,
        "errors": {k: str(v) for k, v in bag.import_errors.items()},
        "dags": {dag_id: {"tasks": [t.task_id for t in dag.tasks], "tags": sorted(dag.tags),
                          "queues": sorted({t.queue for t in dag.tasks}),
                          "schedule": type(dag.timetable).__name__} for dag_id, dag in bag.dags.items()},
    }))
""")


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("airflow_home")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AIRFLOW", "HUIJU_WAREHOUSE"))}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS), "HUIJU_WAREHOUSE_URL": "postgresql://nobody@192.0.2.1/none",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/never-created.db"})
    output = subprocess.run([sys.executable, "-c", PROBE, str(DAGS)], env=env, capture_output=True, text=True,
                            check=True, timeout=300)
    assert not (home / "never-created.db").exists(), "parsing DAGs opened Airflow's metadata database"
    return json.loads(output.stdout.strip().splitlines()[-1])


def test_no_import_errors(parsed: dict) -> None:
    assert parsed["errors"] == {}


def test_one_ingest_dag_per_source_and_the_transform_dag(parsed: dict) -> None:
    from huiju.push.targets import load_targets
    from huiju.registry import load_registry

    registry = load_registry()
    pushes = {target.dag_id for target in load_targets(registry).targets.values()} | {"huiju_push_replay",
                                                                                      "huiju_push_sharing"}
    expected = {f"ingest__{source_id}" for source_id in registry.sources} | {"huiju_transform", "huiju_notices",
                                                                             "huiju_monitor", "huiju_replay"} | pushes
    expected |= {"report__monthly_bulletin", "report__weekly_summary"}  # config/reports/
    assert set(parsed["dags"]) == expected
    assert parsed["dags"]["huiju_push__city_credit"]["tasks"] == ["push", "notify"]
    assert parsed["dags"]["huiju_push_replay"]["tasks"] == ["replay"]
    assert parsed["dags"]["huiju_push_sharing"]["tasks"] == ["deliver", "notify"]
    assert parsed["dags"]["report__monthly_bulletin"]["tasks"] == ["report", "notify"]
    assert parsed["dags"]["report__monthly_bulletin"]["schedule"] == "CronTriggerTimetable"
    assert parsed["dags"]["huiju_monitor"]["tasks"] == ["monitor", "notify"]
    assert parsed["dags"]["huiju_replay"]["tasks"] == ["replay", "announce"]
    for dag_id, dag in parsed["dags"].items():
        if dag_id.startswith("ingest__"):
            assert dag["tasks"] == ["land", "validate", "publish", "feedback", "notify"]
            assert "ingest" in dag["tags"]
    # One dbt build task before the project is first parsed; then a task per dbt node (test_transform_dag.py).
    transform = parsed["dags"]["huiju_transform"]["tasks"]
    assert transform == ["dbt_build"] or {"prepare", "dbt_docs"} <= set(transform), transform


def test_every_task_is_on_the_celery_queue_of_its_kind_of_work(parsed: dict) -> None:
    from huiju.settings import QUEUES

    for dag_id, dag in parsed["dags"].items():
        kind = ("ingest" if dag_id.startswith("ingest__") else "push" if dag_id.startswith("huiju_push") else
                "transform" if dag_id.startswith("report__") else
                {"huiju_transform": "transform", "huiju_notices": "notices", "huiju_monitor": "notices",
                 "huiju_replay": "ingest"}[dag_id])
        assert dag["queues"] == [kind], (dag_id, dag["queues"])
        assert kind in QUEUES


def test_the_dags_folder_parses_in_under_two_seconds(parsed: dict) -> None:
    assert parsed["seconds"] < 2.0, f"dags/ took {parsed['seconds']:.2f}s to parse"


def test_dag_files_only_declare() -> None:
    forbidden = ("Variable.get", "BaseHook.get_connection", "psycopg", "great_expectations", "import dbt",
                 "open(", "requests.")
    for path in DAGS.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not [word for word in forbidden if word in text], f"{path.name} does work at parse time"
