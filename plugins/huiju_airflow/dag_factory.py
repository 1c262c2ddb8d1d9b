"""DAGs generated from the registry: one ingest DAG per source, one transform DAG on their Assets.

Parsing reads only ``config/`` (YAML): no database, network, Variables or Connections.
"""

from __future__ import annotations

import functools
import logging
import operator
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, task

from huiju.registry import Registry, load_registry
from huiju.settings import QUEUES, get_settings
from huiju_airflow import tasks

log = logging.getLogger(__name__)

START = pendulum.datetime(2026, 1, 1, tz=tasks.TIMEZONE)
DEFAULT_ARGS = {"owner": "huiju", "retries": 2, "retry_delay": timedelta(seconds=30)}


def default_args(queue: str) -> dict[str, Any]:
    """:data:`DEFAULT_ARGS` with the Celery queue for this kind of work (one of ``huiju.settings.QUEUES``;
    LocalExecutor ignores queues)."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}: expected one of {QUEUES}")
    return {**DEFAULT_ARGS, "queue": queue}


def raw_asset(dataset: str) -> Asset:
    """The Asset a dataset's raw table stands for; published batches update it."""
    return Asset(name=f"raw.{dataset}", uri=f"huiju://warehouse/raw/{dataset}", group="huiju")


def huiju_dag(dag_id: str, *, queue: str, description: str, schedule: Any, tags: list[str], doc_md: str) -> DAG:
    """A DAG with what every Huiju DAG shares: its start, no catch-up, one run at a time, the default retries,
    its tasks on the Celery ``queue`` of its kind of work."""
    return DAG(dag_id=dag_id, description=description, schedule=schedule, start_date=START, catchup=False,
               max_active_runs=1, default_args=default_args(queue), tags=tags, doc_md=doc_md)


def ingest_dags(registry: Registry | None = None) -> dict[str, DAG]:
    """One DAG per source: land → validate → publish (emits the dataset's Asset), and validate → feedback → notify.

    Feedback runs beside publish, not before it: a workbook that cannot be written must not
    keep good rows from being published.
    """
    registry = registry or load_registry()
    dags: dict[str, DAG] = {}
    for source in registry.sources.values():
        department = registry.departments[source.department]
        with huiju_dag(
            source.ingest_dag_id,
            description=f"{department.name}：{source.title}",
            schedule=source.schedule,
            queue="ingest",
            tags=["ingest", source.department, source.channel, source.dataset],
            doc_md=(f"**{department.name}** delivers `{source.dataset}` ({registry.dataset_of(source).title}) "
                    f"through `{source.channel}` ({source.format}), cadence `{source.cadence}`, "
                    f"tolerance {source.tolerance:.0%}."),
        ) as dag:
            landed = task(task_id="land")(tasks.land)(source.id)
            validated = task(task_id="validate")(tasks.validate)(source.id)
            published = task(task_id="publish", outlets=[raw_asset(source.dataset)])(tasks.publish)(source.id)
            fed_back = task(task_id="feedback")(tasks.feedback)(source.id)
            # Held-batch notices and feedback workbooks go out at once, not at the next huiju_notices run.
            notified = task(task_id="notify", trigger_rule="all_done")(tasks.notify)()
            landed >> validated >> published
            validated >> fed_back >> notified
        dags[dag.dag_id] = dag
    return dags


def notices_dag() -> DAG:
    """``huiju_notices``: every 10 minutes, queue file-drop problems and deliver pending notices (retries included)."""
    with huiju_dag(
        "huiju_notices",
        description="通知：暂缓入库、问题数据反馈、文件报送异常 → 邮件 / 钉钉 / 企业微信",
        schedule="*/10 * * * *",
        queue="notices",
        tags=["notices"],
        doc_md=("Delivers `ops.notices` by e-mail (Connection `huiju_smtp`, smtp provider), DingTalk "
                "(each department's `dingtalk_connection`, dingding provider, signed) and WeCom "
                "(`wecom_connection`); see `huiju/notices.py`."),
    ) as dag:
        task(task_id="notify")(tasks.notify)()
    return dag


def monitor_dag() -> DAG:
    """``huiju_monitor``: every hour, rebuild the submission ledger, queue the 催报 ladder, deliver the notices."""
    with huiju_dag(
        "huiju_monitor",
        description="监控：报送台账 · 催报（提醒、逾期、领导督办、周报）",
        schedule="5 * * * *",
        queue="notices",
        tags=["monitoring", "notices"],
        doc_md=("Rebuilds `ops.submissions` from `ops.loads` and `ops.feedback`, queues reminders, overdue notices, "
                "escalations and the stewards' weekly digest in `ops.notices`, then delivers them; "
                "see `huiju/monitoring/`."),
    ) as dag:
        monitored = task(task_id="monitor")(tasks.monitor)()
        notified = task(task_id="notify", trigger_rule="all_done")(tasks.notify)()
        monitored >> notified
    return dag


def transform_dag(registry: Registry | None = None) -> DAG:
    """The warehouse build whenever any dataset's raw Asset is updated.

    With a parsed dbt manifest (``var/dbt/manifest/manifest.json``, written by the DAG's first task
    whenever ``dbt_project/`` changed) every dbt node is a task (Cosmos, ``LoadMode.DBT_MANIFEST``,
    ``dbt build`` per node: a model and its data tests; unit tests excluded as in the scheduled
    build, :data:`huiju.transform.SCHEDULED_BUILD_FLAGS`), so a failing model or test stops only what
    depends on it. Without one (a fresh checkout before its first run) the DAG is a single
    ``dbt build`` task, and the log says why.
    """
    registry = registry or load_registry()
    assets = [raw_asset(name) for name in sorted(registry.datasets)]
    with huiju_dag(
        "huiju_transform",
        description="dbt：staging → 基础库 · 主题库 · 档案库 · 信用库 → 共享",
        schedule=functools.reduce(operator.or_, assets),
        queue="transform",
        tags=["transform", "dbt"],
        doc_md="dbt docs: Airflow UI → Browse → dbt docs (`var/dbt/docs/index.html`).",
    ) as dag:
        manifest = _dbt_manifest()
        group = _dbt_task_group(manifest) if manifest is not None else None
        if group is None:
            task(task_id="dbt_build")(tasks.build_warehouse)()
        else:
            prepared = task(task_id="prepare")(tasks.prepare_transform)()
            docs = task(task_id="dbt_docs")(tasks.publish_docs)()
            prepared >> group >> docs
    return dag


def _dbt_manifest() -> Path | None:
    """The parsed dbt project, if there is one (never runs dbt: parsing a DAG must stay cheap)."""
    path = get_settings().var / "dbt" / "manifest" / "manifest.json"
    if not path.exists():
        log.info("huiju_transform: no dbt manifest at %s yet, so the build is one task; its first run "
                 "writes the manifest and the next parse shows every dbt node as a task", path)
        return None
    return path


def _dbt_task_group(manifest: Path) -> Any:
    """The dbt nodes as a Cosmos task group, or None (logged) if Cosmos cannot render the manifest."""
    # No usage telemetry leaves a government network (Cosmos reads this when first imported).
    os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
    try:
        from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
        from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

        from huiju.transform import SCHEDULED_BUILD_FLAGS

        project = get_settings().dbt_project_dir
        project_config = ProjectConfig(dbt_project_path=project, manifest_path=manifest, project_name="huiju")
        # Cosmos wraps the path in an ObjectStoragePath, whose first open() loads every Airflow plugin
        # entry point (~0.5 s of the parse); the manifest is a local file, so read it as one.
        project_config.manifest_path = manifest
        return DbtTaskGroup(
            group_id="dbt",
            project_config=project_config,
            profile_config=ProfileConfig(profile_name="huiju", target_name="warehouse",
                                         profiles_yml_filepath=project / "profiles.yml"),
            execution_config=ExecutionConfig(execution_mode=ExecutionMode.LOCAL,
                                             invocation_mode=InvocationMode.DBT_RUNNER),
            # emit_datasets off: Cosmos' OpenLineage URIs are not valid Airflow 3 Asset URIs for a
            # warehouse on a Unix socket, and the raw Assets already say when the build runs.
            render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.BUILD,
                                       emit_datasets=False),
            # Under TestBehavior.BUILD every node is a `dbt build --select <node>`, which would also run
            # the node's dbt unit tests: the scheduled build's flags leave them to CI here too.
            operator_args={"pre_execute": tasks.dbt_task_env, "install_deps": False,
                           "dbt_cmd_flags": list(SCHEDULED_BUILD_FLAGS)},
            # A failed model or test fails again on retry; the next published batch rebuilds it.
            default_args={**default_args("transform"), "retries": 0},
        )
    except Exception:  # a broken or foreign manifest must not take the DAG down: build in one task
        log.exception("huiju_transform: cannot render the dbt manifest %s with Cosmos; "
                      "falling back to one dbt build task", manifest)
        return None
