"""Task callables: each one resolves the run's date and hands over to the core.

Core modules are imported inside the functions, so parsing a DAG never loads psycopg, dbt or GX.
"""

from __future__ import annotations

from datetime import date
from typing import Any

TIMEZONE = "Asia/Shanghai"


def data_date_of(context: dict[str, Any]) -> date:
    """The business day a run covers, in Asia/Shanghai (the run's logical date, else when it ran)."""
    moment = context.get("logical_date") or context.get("run_after") or context["dag_run"].run_after
    return moment.in_timezone(TIMEZONE).date() if hasattr(moment, "in_timezone") else moment.date()


def resolve_connection(conn_id: str | None) -> Any:
    """The source's Airflow Connection as the core's ``ConnectionInfo`` (None when it has none)."""
    if conn_id is None:
        return None
    from airflow.sdk import BaseHook

    from huiju.channels import ConnectionInfo

    found = BaseHook.get_connection(conn_id)
    return ConnectionInfo(conn_id=conn_id, host=found.host, port=found.port, login=found.login,
                          password=found.password, schema=found.schema, extra=found.extra_dejson)


def land(source_id: str, **context: Any) -> dict[str, int]:
    """Land the source's new deliveries; returns counts by outcome for the task log and XCom."""
    from huiju.pipeline import collect
    from huiju.registry import load_registry

    registry = load_registry()
    connection = resolve_connection(registry.source(source_id).connection)
    counts: dict[str, int] = {}
    try:
        results = collect(source_id, data_date_of(context), registry, connection)
    except Exception as exc:
        if getattr(exc, "retryable", True) is False:
            # A wrong password or a refused encryption setting: retrying would only lock the account.
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from exc
        raise
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    return counts


def validate(source_id: str) -> dict[str, int]:
    """Validate landed batches; returns rows accepted and quarantined and batches held."""
    from huiju.pipeline import validate_pending

    results = validate_pending(source_id)
    return {
        "batches": len(results),
        "rows_accepted": sum(r.rows_accepted for r in results),
        "rows_quarantined": sum(r.rows_quarantined for r in results),
        "held": sum(r.status == "held" for r in results),
    }


def publish(source_id: str) -> list[str]:
    """Publish validated batches; the task's outlet Asset then tells dbt there is new data."""
    from huiju.pipeline import publish_validated

    return publish_validated(source_id)


def feedback(source_id: str) -> list[str]:
    """Send each batch's problem rows back to the department (问题数据反馈); returns the workbooks written."""
    from huiju.pipeline import send_feedback

    return send_feedback(source_id)


def build_warehouse() -> None:
    """The transform DAG without a manifest: one ``dbt build`` over every layer, then the docs."""
    from huiju.transform import build, generate_docs

    build()
    generate_docs()


def prepare_transform() -> str:
    """Parse the dbt project again if it changed, so the next DAG parse renders its nodes as tasks."""
    from huiju.transform import ensure_manifest

    return str(ensure_manifest())


def dbt_task_env(context: Any) -> None:
    """Before each Cosmos dbt task: the warehouse's ``HUIJU_DBT_*`` and pseudonym settings in the environment."""
    import os

    from huiju.transform import dbt_env

    os.environ.update(dbt_env())


def publish_docs() -> str:
    """``dbt docs generate`` into var/dbt/docs (served in the Airflow UI by the Huiju plugin)."""
    from huiju.transform import generate_docs

    return str(generate_docs())
