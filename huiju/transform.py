"""Running the dbt project against the warehouse, in-process (dbt's programmatic runner)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from huiju.settings import get_settings
from huiju.warehouse import libpq_params, warehouse_url

log = logging.getLogger(__name__)


class TransformError(RuntimeError):
    """dbt reported failing models or tests; the message lists them."""


def dbt_env(url: str | None = None) -> dict[str, str]:
    """The ``HUIJU_DBT_*`` variables ``dbt_project/profiles.yml`` reads, for this warehouse."""
    params = libpq_params(url or warehouse_url())
    return {
        "HUIJU_DBT_HOST": params["host"],
        "HUIJU_DBT_PORT": params["port"],
        "HUIJU_DBT_USER": params["user"],
        "HUIJU_DBT_PASSWORD": params["password"],
        "HUIJU_DBT_DBNAME": params["dbname"],
    }


def run_dbt(args: Sequence[str], url: str | None = None) -> None:
    """Run ``dbt <args>`` on the project; raise :class:`TransformError` naming what failed."""
    from dbt.cli.main import dbtRunner  # heavy: imported only when dbt actually runs

    settings = get_settings()
    os.environ.update(dbt_env(url))
    project = str(settings.dbt_project_dir)
    full_args = [*args, "--project-dir", project, "--profiles-dir", project,
                 "--target-path", str(settings.var / "dbt" / "target"),
                 "--log-path", str(settings.var / "dbt" / "logs")]
    log.info("dbt %s", " ".join(args))
    result = dbtRunner().invoke(full_args)
    if result.exception is not None:
        raise TransformError(f"dbt {' '.join(args)} could not run: {result.exception}") from result.exception
    if not result.success:
        failures = []
        for node_result in getattr(result.result, "results", None) or []:
            status = str(getattr(node_result, "status", ""))
            if status.lower() in {"error", "fail", "runtime error"}:
                failures.append(f"{node_result.node.unique_id}: {node_result.message}")
        raise TransformError(f"dbt {' '.join(args)} failed: " + ("; ".join(failures) or "see the dbt log"))
