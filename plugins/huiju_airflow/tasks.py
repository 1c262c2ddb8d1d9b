"""Task callables: each one resolves the run's date and hands over to the core.

What the DAG files already load to parse (Airflow's SDK, the registry) is imported here at the
top; the core's working modules (the pipeline, notices, dbt) are imported inside the functions,
so parsing a DAG never loads psycopg, dbt or GX.
"""

from __future__ import annotations

import logging
import os
from datetime import date
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from huiju.channels import ConnectionInfo
from huiju.masking import MaskedError, install_log_masking, masked_errors
from huiju.registry import load_registry

TIMEZONE = "Asia/Shanghai"

# Task logs are read by operators: no citizen's number in any line the platform logs.
install_log_masking()


def data_date_of(context: dict[str, Any]) -> date:
    """The business day a run covers, in Asia/Shanghai (the run's logical date, else when it ran)."""
    moment = context.get("logical_date") or context.get("run_after") or context["dag_run"].run_after
    return moment.in_timezone(TIMEZONE).date() if hasattr(moment, "in_timezone") else moment.date()


def resolve_connection(conn_id: str | None) -> Any:
    """The source's Airflow Connection as the core's ``ConnectionInfo`` (None when it has none)."""
    if conn_id is None:
        return None
    found = BaseHook.get_connection(conn_id)
    return ConnectionInfo(conn_id=conn_id, host=found.host, port=found.port, login=found.login,
                          password=found.password, schema=found.schema, extra=found.extra_dejson)


def land(source_id: str, **context: Any) -> dict[str, int]:
    """Land the source's new deliveries; returns counts by outcome for the task log and XCom."""
    from huiju.pipeline import collect  # why: the pipeline loads psycopg and GX's runner; DAG parsing must not

    registry = load_registry()
    connection = resolve_connection(registry.source(source_id).connection)
    counts: dict[str, int] = {}
    try:
        with masked_errors():  # the task log prints the exception's text
            results = collect(source_id, data_date_of(context), registry, connection)
    except Exception as exc:
        if getattr(exc, "retryable", True) is False:
            # A wrong password or a refused encryption setting: retrying would only lock the account.
            raise AirflowFailException(str(exc)) from exc
        raise
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    return counts


def validate(source_id: str) -> dict[str, int]:
    """Validate landed batches; returns rows accepted and quarantined and batches held."""
    from huiju.pipeline import validate_pending  # why: as in land, keeps DAG parsing cheap

    with masked_errors():
        results = validate_pending(source_id)
    return {
        "batches": len(results),
        "rows_accepted": sum(r.rows_accepted for r in results),
        "rows_quarantined": sum(r.rows_quarantined for r in results),
        "held": sum(r.status == "held" for r in results),
    }


def publish(source_id: str) -> list[str]:
    """Publish validated batches; the task's outlet Asset then tells dbt there is new data.

    With nothing to publish the task is skipped: a skipped task emits no Asset event, so a run that
    found no new delivery starts no warehouse build.
    """
    from huiju.pipeline import publish_validated  # why: as in land, keeps DAG parsing cheap

    with masked_errors():
        published = publish_validated(source_id)
    if not published:
        raise AirflowSkipException("nothing new to publish: no Asset event, so no warehouse build")
    return published


def feedback(source_id: str) -> list[str]:
    """Send each batch's problem rows back to the department (问题数据反馈); returns the workbooks written."""
    from huiju.pipeline import send_feedback  # why: as in land, keeps DAG parsing cheap

    registry = load_registry()
    source = registry.source(source_id)
    # SFTP sources get their workbooks back on their own server, through the source's Connection.
    connection = resolve_connection(source.connection) if source.channel == "sftp" else None
    with masked_errors():
        return send_feedback(source_id, registry, connection)


def monitor(**context: Any) -> dict[str, Any]:
    """Rebuild the submission ledger as of the run's day and queue the 催报 notices it calls for; the sharing sweep."""
    # why: the monitoring modules load psycopg; DAG parsing must not
    from huiju.monitoring.monitor import run_monitor
    from huiju.sharing.sweep import alert_sweep_failure, run_sharing_sweep
    from huiju.warehouse import connect

    registry = load_registry()
    day = data_date_of(context)
    with connect(role="validation") as conn:
        report = run_monitor(conn, registry, day)
    for warning in report.warnings:
        logging.getLogger(__name__).warning("%s", warning)
    # 共享交换's clock on the same hour: grants past their term end, decisions' deadlines are chased. Its own
    # transaction, after the 催报 are committed. A failure tells the stewards (the notify task, all_done, still
    # delivers it with the 催报) and then fails the task, so the run shows it and is retried.
    try:
        with masked_errors():  # the task log prints the exception's text
            sweep = run_sharing_sweep(registry, day)
    except MaskedError as failed:
        logging.getLogger(__name__).error("sharing sweep failed (grants' expiry, decision reminders): %s", failed)
        alert_sweep_failure(day, failed)
        raise
    return {"as_of": str(report.as_of), "periods": report.periods, "queued": len(report.reminders.queued),
            "calendar_gaps": list(report.calendar_gaps),
            "sharing": {"expired": len(sweep.expired), "reminded": sweep.reminded, "escalated": sweep.escalated}}


def push(target_name: str, **context: Any) -> dict[str, Any]:
    """Push the day's credit data to one platform; its Connection resolved here (the core never reads Airflow)."""
    from huiju.push.run import run_push  # why: the push loads httpx and psycopg; DAG parsing must not
    from huiju.push.targets import load_targets

    registry = load_registry()
    connection = resolve_connection(load_targets(registry)[target_name].connection)
    with masked_errors():
        report = run_push(registry, target_name, connection, today=data_date_of(context))
    sent = report.sent
    if sent.stopped:
        # The platform stayed down through every retry: the task fails (and retries); what is queued waits.
        raise RuntimeError(f"{target_name}: {sent.stopped}")
    return {"upserts": report.due.upserts, "withdrawals": report.due.withdrawals, "batches": sent.batches_sent,
            "accepted": sent.accepted, "rejected": sent.rejected, "unknown": sent.unknown}


def share_push(**context: Any) -> dict[str, Any]:
    """Deliver every live grant shared by push for the run's day (共享方式 push): pushed to its department's receiver,
    or exported as a file to its portal download area."""
    from huiju.sharing.delivery import run_share_deliveries  # why: as in push

    with masked_errors():
        reports = run_share_deliveries(resolve_connection, period=data_date_of(context))
    stopped = [f"grant {r.grant_id}: {r.stopped}" for r in reports if r.stopped]
    if stopped:
        # A receiver down through every retry: the task fails (and retries); what is queued waits, in order.
        raise RuntimeError("; ".join(stopped))
    return {"grants": len(reports), "records": sum(r.records or 0 for r in reports),
            "accepted": sum(r.sent.accepted for r in reports if r.sent),
            "rejected": sum(r.sent.rejected for r in reports if r.sent)}


def push_replay(**context: Any) -> dict[str, Any]:
    """Replay a date range at one target, from the run's validated Params (huiju_push_replay)."""
    from huiju.push.run import run_replay  # why: as in push
    from huiju.push.targets import load_targets

    params = context["params"]
    registry = load_registry()
    target_name = params["target"]
    connection = resolve_connection(load_targets(registry)[target_name].connection)
    with masked_errors():
        queued, sent = run_replay(registry, target_name, connection, date.fromisoformat(params["start"]),
                                  date.fromisoformat(params["end"]),
                                  include_accepted=bool(params["include_accepted"]))
    if sent.stopped:
        raise RuntimeError(f"{target_name}: {sent.stopped}")
    return {"queued": queued, "accepted": sent.accepted, "rejected": sent.rejected, "unknown": sent.unknown}


def report(report_id: str, **context: Any) -> dict[str, Any]:
    """Run a scheduled report for the last period that closed before the run (workbook, charts, e-mail once)."""
    # why: the reports load psycopg, matplotlib and XlsxWriter; DAG parsing must not
    from huiju.reports.delivery import run_configured

    moment = context.get("run_after") or context["dag_run"].run_after
    run = run_configured(report_id, now=moment)
    return {"report": run.report_id, "period": run.period, "workbook": str(run.workbook),
            "charts": len(run.charts), "queued": run.notice_id is not None}


def build_warehouse() -> None:
    """The transform DAG without a manifest: one ``dbt build`` over every layer, then the docs."""
    from huiju.transform import build, generate_docs  # why: dbt is heavy; DAG parsing must not load it

    build()
    generate_docs()


def prepare_transform() -> str:
    """Parse the dbt project again if it changed, so the next DAG parse renders its nodes as tasks."""
    from huiju.transform import ensure_manifest  # why: dbt is heavy; DAG parsing must not load it

    return str(ensure_manifest())


def dbt_task_env(context: Any) -> None:
    """Before each Cosmos dbt task: the warehouse's ``HUIJU_DBT_*`` and pseudonym settings in the environment."""
    from huiju.transform import dbt_env  # why: dbt is heavy; DAG parsing must not load it

    os.environ.update(dbt_env())


def publish_docs() -> str:
    """``dbt docs generate`` into var/dbt/docs (served in the Airflow UI by the Huiju plugin)."""
    from huiju.transform import generate_docs  # why: dbt is heavy; DAG parsing must not load it

    return str(generate_docs())


SMTP_CONN_ID = "huiju_smtp"  # the platform's mail relay: Airflow Connection of type smtp
DEFAULT_FROM = "huiju-noreply@example.gov.cn"


def email_sender(conn_id: str = SMTP_CONN_ID) -> Any:
    """A notice sender (see ``huiju.notices``) that e-mails through the smtp provider's ``SmtpHook``.

    The message carries a stable Message-ID and an ``X-Huiju-Notice`` header naming the notice. A notice with
    inline images (a report's charts) goes as ``multipart/related``: the HTML body shows each image by
    ``cid:<file name>``, the Content-ID the hook gives every file it sends, each an inline ``image/png``
    (:class:`huiju_airflow.mail.InlineImagesSmtpHook`); the attachment rides along.
    """
    def send(outgoing: Any) -> None:
        # why: the provider and the notices (psycopg) are needed only when a notice goes out
        from huiju.notices import html_body
        from huiju_airflow.mail import InlineImagesSmtpHook

        files = [str(image) for image in outgoing.inline_images]
        if outgoing.attachment is not None:
            files.append(str(outgoing.attachment))
        with InlineImagesSmtpHook(smtp_conn_id=conn_id) as hook:
            hook.send_email_smtp(
                to=outgoing.recipient, subject=outgoing.subject,
                html_content=html_body(outgoing.body, outgoing.inline_images),
                from_email=hook.from_email or DEFAULT_FROM, files=files or None,
                mime_subtype="related" if outgoing.inline_images else "mixed",
                custom_headers={"Message-ID": outgoing.message_id, "X-Huiju-Notice": outgoing.dedupe_key})

    return send


def dingtalk_sender() -> Any:
    """A notice sender that posts to a DingTalk group robot through the dingding provider's hook, signed (加签).

    The recipient is the robot's Airflow Connection id (host: the API base, password: its access
    token, extra ``secret``: the signing secret; see :class:`huiju_airflow.robots.SignedDingdingHook`).
    """
    def send(outgoing: Any) -> None:
        # why: the provider and the notices (psycopg) are needed only when a notice goes out
        from huiju.notices import robot_markdown
        from huiju_airflow.robots import SignedDingdingHook

        SignedDingdingHook(dingding_conn_id=outgoing.recipient, message_type="markdown",
                           message={"title": outgoing.subject, "text": robot_markdown(outgoing)}).send()

    return send


def wecom_sender() -> Any:
    """A notice sender that posts to a WeCom group robot (企业微信) through :class:`huiju_airflow.robots.WeComHook`.

    The recipient is the robot's Airflow Connection id (password: the webhook key).
    """
    def send(outgoing: Any) -> None:
        # why: the notices (psycopg) and httpx are needed only when a notice goes out
        from huiju.notices import robot_markdown
        from huiju_airflow.robots import WeComHook

        WeComHook(wecom_conn_id=outgoing.recipient).send(robot_markdown(outgoing), message_id=outgoing.message_id)

    return send


def notice_senders(smtp_conn_id: str = SMTP_CONN_ID) -> dict[str, Any]:
    """The senders this deployment can use: e-mail only when the smtp Connection exists; the robots always."""
    senders: dict[str, Any] = {"dingtalk": dingtalk_sender(), "wecom": wecom_sender()}
    try:
        BaseHook.get_connection(smtp_conn_id)
    except Exception:  # not configured: e-mails stay queued until it is
        logging.getLogger(__name__).warning("no Airflow Connection %r: e-mail notices stay queued", smtp_conn_id)
    else:
        senders["email"] = email_sender(smtp_conn_id)
    return senders


def notify() -> dict[str, int]:
    """Queue the file-drop problems as notices and deliver every pending notice (e-mail, DingTalk, WeCom)."""
    # why: notices and the warehouse load psycopg; DAG parsing must not
    from huiju.notices import run_notices
    from huiju.warehouse import connect

    with masked_errors(), connect(role="validation") as conn:
        report = run_notices(conn, load_registry(), notice_senders())
    if report.opened:
        logging.getLogger(__name__).warning("notice channel(s) down, paused: %s", ", ".join(report.opened))
    return {"delivered": report.delivered, "failed": report.failed, "superseded": report.superseded}


def replay_archived(**context: Any) -> dict[str, Any]:
    """Land archived originals again (重放) as the run's validated Params select; returns what each became."""
    from huiju.replay import ReplayError, replay, select_manifests  # why: the replay loads psycopg and GX

    params = context["params"]
    try:
        manifests = select_manifests(load_id=params.get("load_id"), source_id=params.get("source_id"),
                                     since=_param_day(params.get("since")), until=_param_day(params.get("until")))
    except ReplayError as exc:  # a selection that cannot be replayed: retrying cannot help
        raise AirflowFailException(str(exc)) from exc
    with masked_errors():
        replayed = replay(manifests)
    outcomes: dict[str, int] = {}
    for item in replayed:
        outcomes[item.outcome] = outcomes.get(item.outcome, 0) + 1
    return {"outcomes": outcomes, "landed": [item.load_id for item in replayed if item.outcome == "landed"]}


def announce_replayed(replayed: dict[str, Any]) -> list[str]:
    """Tell dbt (through the task's outlet Assets) that replayed batches were published; skip when none were."""
    if not replayed.get("landed"):
        raise AirflowSkipException("nothing was landed again: the warehouse already held every replayed load")
    return replayed["landed"]


def _param_day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
