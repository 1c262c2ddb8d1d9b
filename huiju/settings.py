"""Where things live and which warehouse to use, read once from the environment.

Environment variables (all optional):

- ``HUIJU_HOME``: the project root (defaults to the checkout this package lives in);
- ``HUIJU_VAR``: runtime state (embedded PostgreSQL, archive, inboxes, Airflow home); default ``$HUIJU_HOME/var``;
- ``HUIJU_WAREHOUSE_URL``: a PostgreSQL URL; when unset the platform starts an embedded PostgreSQL under ``var/``;
- ``HUIJU_CONFIG``: the configuration folder (default ``$HUIJU_HOME/config``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class Settings:
    """Resolved paths and switches for one process."""

    home: Path
    var: Path
    config_dir: Path
    warehouse_url: str | None

    @property
    def archive_dir(self) -> Path:
        """Content-addressed store of every original file and payload received."""
        return self.var / "archive"

    @property
    def inbox_dir(self) -> Path:
        """Root of the departments' inbox folders (one sub-folder per source)."""
        return self.var / "inbox"

    @property
    def outbox_dir(self) -> Path:
        """Root of what goes back to departments (feedback workbooks, notices)."""
        return self.var / "outbox"

    @property
    def pgdata_dir(self) -> Path:
        """Data directory of the embedded PostgreSQL."""
        return self.var / "pgdata"

    @property
    def airflow_home(self) -> Path:
        """AIRFLOW_HOME: config, logs and the scheduler's state."""
        return self.var / "airflow"

    @property
    def dbt_project_dir(self) -> Path:
        """The dbt project that builds staging → basic → credit."""
        return self.home / "dbt_project"

    @property
    def dags_dir(self) -> Path:
        """Airflow's DAG folder."""
        return self.home / "dags"


def _default_home() -> Path:
    return Path(__file__).resolve().parent.parent


@cache
def get_settings() -> Settings:
    """Settings of this process, read from the environment on first use."""
    home = Path(os.environ.get("HUIJU_HOME") or _default_home()).resolve()
    var = Path(os.environ.get("HUIJU_VAR") or home / "var").resolve()
    config_dir = Path(os.environ.get("HUIJU_CONFIG") or home / "config").resolve()
    return Settings(
        home=home,
        var=var,
        config_dir=config_dir,
        warehouse_url=os.environ.get("HUIJU_WAREHOUSE_URL") or None,
    )
