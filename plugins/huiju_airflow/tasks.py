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
    for result in collect(source_id, data_date_of(context), registry, connection):
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


def build_warehouse() -> None:
    """Run dbt build (models and their tests) over every layer."""
    from huiju.transform import run_dbt

    run_dbt(["build"])
