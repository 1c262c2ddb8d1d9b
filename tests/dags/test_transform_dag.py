"""The transform DAG: every dbt node a task when a manifest exists (Cosmos), one task before; fast to parse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent("""
    import json, socket, sys, time

    def refuse(*args, **kwargs):
        raise RuntimeError("network or database access while parsing the transform DAG")

    socket.socket.connect = refuse
    socket.create_connection = refuse
    import airflow.sdk  # imported already in Airflow's DAG processor
    import huiju_airflow.dag_factory  # imported already by the ingest DAG file
    import runpy

    started = time.perf_counter()
    dag = runpy.run_path(sys.argv[1])["dag"]
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds,
                      "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
                      "dbt": {t.task_id: {"command": list(getattr(t, "base_cmd", [])), "select": t.select,
                                          "flags": list(t.dbt_cmd_flags)}
                              for t in dag.tasks if hasattr(t, "dbt_cmd_flags")}}))
""")


def _parse(var: Path, **settings: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "HUIJU_WAREHOUSE"))}
    env.update({**settings, "HUIJU_VAR": str(var),
                "AIRFLOW_HOME": str(var / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "HUIJU_WAREHOUSE_URL": "postgresql://nobody@192.0.2.1/none"})
    done = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "dags" / "huiju_transform.py")], env=env,
                          capture_output=True, text=True, check=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def with_manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    var = tmp_path_factory.mktemp("var")
    env = {**os.environ, "HUIJU_VAR": str(var)}
    subprocess.run([sys.executable, "-c", "from huiju.transform import ensure_manifest; ensure_manifest()"],
                   env=env, check=True, capture_output=True, timeout=300)
    manifest = json.loads((var / "dbt" / "manifest" / "manifest.json").read_text(encoding="utf-8"))
    return {"parsed": _parse(var), "manifest": manifest, "var": var}


def _dbt_ls(var: Path, select: str, *flags: str) -> list[dict]:
    """``dbt ls`` (no database) of what a node's ``dbt build --select`` with ``flags`` would run."""
    code = textwrap.dedent("""
        import json, os, sys
        from dbt.cli.main import dbtRunner
        from huiju.settings import get_settings
        os.environ.setdefault("HUIJU_DBT_HOST", "localhost")
        os.environ.setdefault("HUIJU_DBT_PORT", "5432")
        project = str(get_settings().dbt_project_dir)
        result = dbtRunner().invoke(["ls", "--quiet", "--output", "json", "--output-keys", "resource_type", "name",
                                     "--project-dir", project, "--profiles-dir", project,
                                     "--target-path", sys.argv[1], "--log-path", sys.argv[1], *sys.argv[2:]])
        assert result.success, result.exception
        print(json.dumps([json.loads(line) for line in result.result]))
    """)
    env = {**os.environ, "HUIJU_VAR": str(var)}
    done = subprocess.run([sys.executable, "-c", code, str(var / "ls"), "--select", select, *flags], env=env,
                          capture_output=True, text=True, check=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_a_manifest_the_build_is_one_task(tmp_path: Path) -> None:
    assert _parse(tmp_path)["upstream"] == {"dbt_build": []}


def test_with_transform_tasks_build_the_build_is_one_task_even_with_a_manifest(with_manifest: dict) -> None:
    assert _parse(with_manifest["var"], HUIJU_TRANSFORM_TASKS="build")["upstream"] == {"dbt_build": []}


def test_every_dbt_node_is_a_task_between_prepare_and_docs(with_manifest: dict) -> None:
    upstream = with_manifest["parsed"]["upstream"]
    nodes = {node["name"] for node in with_manifest["manifest"]["nodes"].values()
             if node["resource_type"] in ("model", "seed", "snapshot")}
    dbt_tasks = {task_id for task_id in upstream if task_id.startswith("dbt.")}
    assert {task_id.removeprefix("dbt.").rsplit("_", 2)[0] for task_id in dbt_tasks} == nodes
    assert upstream["prepare"] == []
    assert all("prepare" in upstream[t] or any(u.startswith("dbt.") for u in upstream[t]) for t in dbt_tasks)
    assert set(upstream["dbt_docs"]) <= dbt_tasks and upstream["dbt_docs"]


def test_a_failing_model_stops_only_what_depends_on_it(with_manifest: dict) -> None:
    upstream = with_manifest["parsed"]["upstream"]

    def ancestors(task_id: str) -> set[str]:
        found: set[str] = set()
        todo = [task_id]
        while todo:
            for parent in upstream[todo.pop()]:
                if parent not in found:
                    found.add(parent)
                    todo.append(parent)
        return found

    legal_person = "dbt.basic_legal_person_model_build"
    assert legal_person in ancestors("dbt.archive_legal_person_profile_model_build")
    assert legal_person in ancestors("dbt.share_legal_person_model_build")
    # The natural-person side and the publication of penalties do not wait for the legal-person base.
    for independent in ("dbt.basic_population_model_build", "dbt.credit_natural_person_penalty_model_build",
                        "dbt.share_legal_person_penalty_publication_model_build"):
        assert legal_person not in ancestors(independent), independent


def test_the_node_tasks_leave_unit_tests_out_like_the_scheduled_build(with_manifest: dict) -> None:
    from huiju.transform import SCHEDULED_BUILD_FLAGS

    tasks = with_manifest["parsed"]["dbt"]
    assert tasks and all(t["command"] == ["build"] and t["flags"] == list(SCHEDULED_BUILD_FLAGS)
                         for t in tasks.values())
    # What the legal-person node's task runs: the model and its data tests, none of its unit tests
    # (which a bare `dbt build --select` of the node would run).
    task = tasks["dbt.basic_legal_person_model_build"]
    bare = _dbt_ls(with_manifest["var"], task["select"])
    flagged = _dbt_ls(with_manifest["var"], task["select"], *task["flags"])
    assert {n["resource_type"] for n in bare} >= {"model", "test", "unit_test"}
    assert {n["resource_type"] for n in flagged} == {"model", "test"}
    assert [n for n in bare if n["resource_type"] != "unit_test"] == flagged


def test_a_node_task_runs_only_the_tests_whose_parents_it_has_built(with_manifest: dict) -> None:
    tasks = with_manifest["parsed"]["dbt"]
    relationship = "dbt_utils_free_relationships_basic_legal_person_region_code"
    seed = tasks["dbt.basic_admin_division_seed_build"]
    model = tasks["dbt.basic_legal_person_model_build"]
    assert not [n for n in _dbt_ls(with_manifest["var"], seed["select"], *seed["flags"]) if relationship in n["name"]]
    assert [n for n in _dbt_ls(with_manifest["var"], model["select"], *model["flags"]) if relationship in n["name"]]


def test_every_data_test_runs_in_some_node_task(with_manifest: dict) -> None:
    # With --indirect-selection buildable a node's task runs a test when every other parent of the
    # test is upstream of the node: some parent must have all the others upstream.
    manifest = with_manifest["manifest"]
    parents = manifest["parent_map"]

    def ancestors(unique_id: str) -> set[str]:
        found: set[str] = set()
        todo = list(parents.get(unique_id, []))
        while todo:
            parent = todo.pop()
            if parent not in found:
                found.add(parent)
                todo.extend(parents.get(parent, []))
        return found

    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] == "test":
            built = [p for p in parents[unique_id] if not p.startswith("source.")]
            assert any(set(built) - {p} <= ancestors(p) for p in built), unique_id
