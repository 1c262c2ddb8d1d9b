"""The platform's LocalExecutor: its task processes start with the platform's task code already imported.

Airflow's LocalExecutor forks its workers from the scheduler, and each worker forks a process per task
(``airflow.sdk.execution_time.supervisor``); what the task imports, it imports anew every time. Ours import
Great Expectations (3.7 s of CPU), dbt (2.1 s), psycopg, openpyxl and the pipeline (~1 s): paid once per task
on a machine that runs hundreds a day. Imported here once, before the workers fork, every task process starts
with them (as gunicorn's ``--preload`` does for web workers). Configured by ``huiju.airflow_env`` for
``HUIJU_EXECUTOR=LocalExecutor``; Airflow's own ``LocalExecutor`` otherwise unchanged.
Measured with ``python -m bench daily_cycle``, alternating, 2 cores at load 1.5–5 (2026-12-08): Airflow's
LocalExecutor 0.36 and 0.40 (147 s and 118 s through the scheduler; task overhead median 5.6 / 5.1 s, p95 35 / 24 s),
this one 0.53 and 0.48 (86 s and 100 s; median 2.3 / 4.1 s, p95 9.2 / 11.1 s).
"""

from __future__ import annotations

import importlib

from airflow.executors.local_executor import LocalExecutor

#: What the ingest, build, push and notices tasks import when they run (``huiju_airflow.tasks``).
TASK_MODULES = (
    "great_expectations",
    "huiju.pipeline",
    "huiju.quality.gx",
    "huiju.notices",
    "huiju.monitoring.monitor",
    "huiju.push.run",
    "dbt.cli.main",
    "huiju.transform",
)


def preload_task_modules() -> None:
    """Import what the tasks import (a module missing here is left to the task, which reports it)."""
    for name in TASK_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue


class PreloadingLocalExecutor(LocalExecutor):
    """Airflow's LocalExecutor, its workers forked after the tasks' modules are imported."""

    def start(self) -> None:
        preload_task_modules()
        super().start()
