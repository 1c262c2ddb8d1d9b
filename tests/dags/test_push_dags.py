"""The push DAGs: the replay's Params are validated before a run starts."""

from __future__ import annotations

import copy

import pytest


@pytest.fixture(scope="module")
def replay_dag():
    from huiju_airflow.dag_factory import push_dags

    return push_dags()["huiju_push_replay"]


def test_replay_params_refuse_an_unknown_target_and_a_bad_date(replay_dag) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    good = {"target": "city_credit", "start": "2026-12-01", "end": "2026-12-02"}
    params = copy.deepcopy(replay_dag.params)
    params.update(good)
    assert params.validate()["include_accepted"] is False
    for wrong in ({"target": "somewhere"}, {"start": "2026-13-01"}, {"include_accepted": "yes"}):
        params = copy.deepcopy(replay_dag.params)
        with pytest.raises(ParamValidationError):
            params.update({**good, **wrong})
            params.validate()
