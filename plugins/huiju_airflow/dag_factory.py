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
from airflow.sdk import DAG, Asset, CronTriggerTimetable, Param, task

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


def huiju_dag(dag_id: str, *, queue: str, description: str, schedule: Any, tags: list[str], doc_md: str,
              retries: int | None = None, params: dict[str, Any] | None = None) -> DAG:
    """A DAG with what every Huiju DAG shares: its start, no catch-up, one run at a time, the default retries
    (unless ``retries`` says otherwise), its tasks on the Celery ``queue`` of its kind of work; ``params``: its
    Params."""
    args = default_args(queue) if retries is None else {**default_args(queue), "retries": retries}
    return DAG(dag_id=dag_id, description=description, schedule=schedule, start_date=START, catchup=False,
               max_active_runs=1, default_args=args, tags=tags, doc_md=doc_md, params=params)


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


def _notifying_dag(dag_id: str, *, description: str, schedule: Any, tags: list[str], doc_md: str,
                   queue: str = "notices", work: tuple[str, Any, tuple[Any, ...]] | None = None) -> DAG:
    """A clock-driven DAG that ends by delivering the notices queued in ``ops.notices``; ``work`` (task id,
    callable, its arguments) runs first when given, and the delivery follows whatever its outcome."""
    with huiju_dag(dag_id, description=description, schedule=schedule, queue=queue, tags=tags,
                   doc_md=doc_md) as dag:
        worked = task(task_id=work[0])(work[1])(*work[2]) if work is not None else None
        notified = task(task_id="notify", trigger_rule="all_done")(tasks.notify)()
        if worked is not None:
            worked >> notified
    return dag


def notices_dag() -> DAG:
    """``huiju_notices``: every 10 minutes, queue file-drop problems and deliver pending notices (retries included)."""
    return _notifying_dag(
        "huiju_notices",
        description="通知：暂缓入库、问题数据反馈、文件报送异常 → 邮件 / 钉钉 / 企业微信",
        schedule="*/10 * * * *",
        tags=["notices"],
        doc_md=("Delivers `ops.notices` by e-mail (Connection `huiju_smtp`, smtp provider), DingTalk "
                "(each department's `dingtalk_connection`, dingding provider, signed) and WeCom "
                "(`wecom_connection`); see `huiju/notices.py`."))


def push_dags(registry: Registry | None = None) -> dict[str, DAG]:
    """One DAG per push target (``huiju_push__<target>``, on its schedule), ``huiju_push_sharing`` (grants shared
    by push) and ``huiju_push_replay``.

    A target's run computes what is due, sends it, sends rejections back to their departments and
    alerts on 双公示 deadlines (task ``push``), then delivers the notices (``notify``). The replay DAG
    takes its target and dates as Params, validated before the run starts.
    """
    from airflow.sdk import Param  # why: only the push DAGs take Params

    from huiju.push.targets import load_targets

    registry = registry or load_registry()
    targets = load_targets(registry)
    dags: dict[str, DAG] = {}
    for target in targets.targets.values():
        with huiju_dag(
            target.dag_id,
            description=f"推送：{target.title}",
            schedule=target.schedule,
            queue="push",
            tags=["push", target.level],
            doc_md=(f"Pushes {', '.join(r.relation for r in target.relations)} to **{target.title}** "
                    f"(Connection `{target.connection}`, {target.auth}); see `huiju/push/`."),
        ) as dag:
            pushed = task(task_id="push")(tasks.push)(target.target)
            notified = task(task_id="notify", trigger_rule="all_done")(tasks.notify)()
            pushed >> notified
        dags[dag.dag_id] = dag
    with huiju_dag(
        "huiju_push_sharing",
        description="共享推送：按日将数据推送方式的共享授权推送至申请部门的接收系统，或导出数据文件供其下载",
        schedule="0 3 * * *",  # 03:00 Asia/Shanghai, after the night's warehouse build and the credit pushes
        queue="push",
        tags=["push", "sharing"],
        doc_md=("Delivers each live grant of a resource shared by push (its approved fields and rows) to the requesting"
                " department once a day: to its receiver (`config/sharing/receivers/`) through the push outbox and "
                "sender, or as a CSV file in its portal download area; see `huiju/sharing/delivery.py`."),
    ) as dag:
        delivered = task(task_id="deliver")(tasks.share_push)()
        notified = task(task_id="notify", trigger_rule="all_done")(tasks.notify)()
        delivered >> notified
    dags[dag.dag_id] = dag
    names = sorted(targets.targets)
    with huiju_dag(
        "huiju_push_replay",
        description="推送重放：按日期范围重新推送未被接收的记录",
        schedule=None,
        queue="push",
        retries=0,
        tags=["push", "replay"],
        params={
            "target": Param(names[0] if names else "", type="string", enum=names, description="推送目标"),
            "start": Param(type="string", format="date", description="first day queued, YYYY-MM-DD"),
            "end": Param(type="string", format="date", description="last day queued, YYYY-MM-DD"),
            "include_accepted": Param(False, type="boolean", description="resend what the target already accepted"),
        },
        doc_md="Resends what a target holds no accepted receipt for, queued between `start` and `end`.",
    ) as dag:
        task(task_id="replay")(tasks.push_replay)()
    dags[dag.dag_id] = dag
    return dags


def monitor_dag() -> DAG:
    """``huiju_monitor``: every hour, rebuild the submission ledger, queue the 催报 ladder, deliver the notices."""
    return _notifying_dag(
        "huiju_monitor",
        description="监控：报送台账 · 催报（提醒、逾期、领导督办、周报）",
        schedule="5 * * * *",
        tags=["monitoring", "notices"],
        doc_md=("Rebuilds `ops.submissions` from `ops.loads` and `ops.feedback`, queues reminders, overdue notices, "
                "escalations and the stewards' weekly digest in `ops.notices`, then delivers them; "
                "see `huiju/monitoring/`."),
        work=("monitor", tasks.monitor, ()))


#: Updated when a replay landed batches again; the warehouse build follows it as it follows the raw Assets.
REPLAYED = Asset(name="huiju.replayed", uri="huiju://warehouse/replayed", group="huiju")


def replay_dag() -> DAG:
    """``huiju_replay``: on demand, land archived originals again (重放) as its validated Params select.

    Params (checked by Airflow against their JSON schema when the run is triggered): ``load_id``
    (one load), or ``since`` (a day, YYYY-MM-DD) with an optional ``source_id`` and ``until``; an
    unknown source fails the run, naming it. What the replay landed is validated and published, and
    the ``announce`` task updates the :data:`REPLAYED` Asset, so the warehouse build follows.
    Parsing reads no configuration: the registry costs half a second to load.
    """
    day = {"type": ["null", "string"], "format": "date"}
    with DAG(
        dag_id="huiju_replay",
        description="重放：从归档原件重新入库（同一路径、同样的行、行号与结论）",
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        # Landing work, on the ingest queue; a failed replay is looked at, not retried.
        default_args={**default_args("ingest"), "retries": 0},
        tags=["replay"],
        params={
            "load_id": Param(None, type=["null", "string"], pattern=r"^[a-z0-9_]+-[0-9a-f]{16}$",
                             description="one load id (ops.loads.load_id); or leave empty and give since"),
            "source_id": Param(None, type=["null", "string"], pattern=r"^[a-z0-9_]+$",
                               description="only this source's loads (with since)"),
            "since": Param(None, **day, description="loads delivered on or after this day (Asia/Shanghai)"),
            "until": Param(None, **day, description="loads delivered on or before this day (default: up to now)"),
        },
        doc_md="Replays archived originals through the landing path of their first delivery; see `huiju/replay.py`.",
    ) as dag:
        replayed = task(task_id="replay")(tasks.replay_archived)()
        task(task_id="announce", outlets=[REPLAYED])(tasks.announce_replayed)(replayed)
    return dag


def report_dags() -> dict[str, DAG]:
    """One DAG per scheduled report (``config/reports/*.yaml``) on its cron: run the report, then deliver notices."""
    from huiju.reports.config import load_reports  # why: only this factory needs the reports' configuration

    dags: dict[str, DAG] = {}
    for report_id, report in sorted(load_reports().items()):
        # Rendering reads the analysis layer and draws charts: warehouse work, on the transform queue.
        dags[f"report__{report_id}"] = _notifying_dag(
            f"report__{report_id}", description=f"定时离线分析：{report.title}", schedule=beijing_cron(report.cron),
            tags=["reports", "analysis"], queue="transform",
            doc_md=(f"Runs `config/reports/{report_id}.yaml` for the last {report.period} that closed: the workbook "
                    "with charts into `var/reports/`, its e-mail queued once (`huiju/reports/`), then delivered."),
            work=("report", tasks.report, (report_id,)))
    return dags


def beijing_cron(expression: str) -> Any:
    """A cron schedule in Beijing time (the reports' crons are the bureau's office hours)."""
    return CronTriggerTimetable(expression, timezone=tasks.TIMEZONE)


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
        schedule=functools.reduce(operator.or_, [*assets, REPLAYED]),
        queue="transform",
        tags=["transform", "dbt"],
        doc_md="dbt docs: Airflow UI → Browse → dbt docs (`var/dbt/docs/index.html`).",
    ) as dag:
        manifest = _dbt_manifest() if get_settings().transform_tasks == "node" else None
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
