"""DAGs generated from the registry: one ingest DAG per source, one transform DAG on their Assets.

Parsing reads only ``config/`` (YAML): no database, network, Variables or Connections.
"""

from __future__ import annotations

import functools
import operator
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, task

from huiju.registry import Registry, load_registry
from huiju_airflow import tasks

START = pendulum.datetime(2026, 1, 1, tz=tasks.TIMEZONE)
DEFAULT_ARGS = {"owner": "huiju", "retries": 2, "retry_delay": timedelta(seconds=30)}


def raw_asset(dataset: str) -> Asset:
    """The Asset a dataset's raw table stands for; published batches update it."""
    return Asset(name=f"raw.{dataset}", uri=f"huiju://warehouse/raw/{dataset}", group="huiju")


def ingest_dag_id(source_id: str) -> str:
    """The id of a source's ingest DAG."""
    return f"ingest__{source_id}"


def ingest_dags(registry: Registry | None = None) -> dict[str, DAG]:
    """One DAG per source: land → validate → publish (emits the dataset's Asset)."""
    registry = registry or load_registry()
    dags: dict[str, DAG] = {}
    for source in registry.sources.values():
        department = registry.departments[source.department]
        with DAG(
            dag_id=ingest_dag_id(source.id),
            description=f"{department.name}：{source.title}",
            schedule=source.schedule,
            start_date=START,
            catchup=False,
            max_active_runs=1,
            default_args=DEFAULT_ARGS,
            tags=["ingest", source.department, source.channel, source.dataset],
            doc_md=(f"**{department.name}** delivers `{source.dataset}` ({registry.dataset_of(source).title}) "
                    f"through `{source.channel}` ({source.format}), cadence `{source.cadence}`, "
                    f"tolerance {source.tolerance:.0%}."),
        ) as dag:
            landed = task(task_id="land")(tasks.land)(source.id)
            validated = task(task_id="validate")(tasks.validate)(source.id)
            published = task(task_id="publish", outlets=[raw_asset(source.dataset)])(tasks.publish)(source.id)
            landed >> validated >> published
        dags[dag.dag_id] = dag
    return dags


def transform_dag(registry: Registry | None = None) -> DAG:
    """dbt build whenever any dataset's raw Asset is updated."""
    registry = registry or load_registry()
    assets = [raw_asset(name) for name in sorted(registry.datasets)]
    with DAG(
        dag_id="huiju_transform",
        description="dbt：staging → 信用库",
        schedule=functools.reduce(operator.or_, assets),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["transform", "dbt"],
    ) as dag:
        task(task_id="dbt_build")(tasks.build_warehouse)()
    return dag
