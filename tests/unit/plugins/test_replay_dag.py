"""The replay DAG (huiju_replay): Params Airflow validates when a run is triggered, two tasks, no schedule."""

from __future__ import annotations

import copy

import pytest


@pytest.fixture(scope="module")
def dag():
    from huiju_airflow.dag_factory import replay_dag

    return replay_dag()


def test_replay_dag_is_triggered_by_hand_and_announces_to_the_warehouse_build(dag) -> None:
    assert dag.schedule is None
    assert [t.task_id for t in dag.tasks] == ["replay", "announce"]
    from huiju_airflow.dag_factory import REPLAYED, transform_dag

    assert dag.get_task("announce").outlets == [REPLAYED]
    assert REPLAYED in transform_dag().timetable.asset_condition.objects  # the warehouse build follows a replay


@pytest.mark.parametrize("params", [
    {"load_id": "scjgj_penalty-0123456789abcdef"},
    {"since": "2026-11-01"},
    {"source_id": "scjgj_penalty", "since": "2026-11-01", "until": "2026-11-30"},
])
def test_well_formed_params_are_accepted(dag, params: dict) -> None:
    trial = copy.deepcopy(dag.params)
    trial.update(params)
    resolved = trial.validate()
    assert {k: resolved[k] for k in params} == params


@pytest.mark.parametrize("params", [
    {"load_id": "scjgj_penalty; drop table ops.loads"},
    {"source_id": "SCJGJ; --", "since": "2026-11-01"},
    {"since": "2026-13-01"},
    {"until": "yesterday"},
])
def test_malformed_params_are_refused_before_anything_runs(dag, params: dict) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    trial = copy.deepcopy(dag.params)
    with pytest.raises(ParamValidationError):
        trial.update(params)
        trial.validate()
