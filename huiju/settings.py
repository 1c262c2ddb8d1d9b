"""Where things live and which warehouse to use, read once from the environment.

Environment variables (all optional):

- ``HUIJU_HOME``: the project root (defaults to the checkout this package lives in);
- ``HUIJU_VAR``: runtime state (embedded PostgreSQL, archive, inboxes, Airflow home); default ``$HUIJU_HOME/var``;
- ``HUIJU_WAREHOUSE_URL``: a PostgreSQL URL; when unset the platform starts an embedded PostgreSQL under ``var/``;
- ``HUIJU_CONFIG``: the configuration folder (default ``$HUIJU_HOME/config``);
- ``HUIJU_DEMO``: ``1`` for the demo switch (``huiju demo``, the tests): the transform may then run without
  ``HUIJU_PSEUDONYM_KEY``, under a public demo key whose pseudonyms all start with ``demo-``. Never in production.
- ``HUIJU_PORTAL_URL``: the departments' portal as departments reach it, linked from the notices
  (default ``http://$HUIJU_PORTAL_HOST:$HUIJU_PORTAL_PORT/``, i.e. ``http://127.0.0.1:8081/``).
- ``HUIJU_EXECUTOR``: Airflow's executor, ``LocalExecutor`` (the default: one machine) or ``CeleryExecutor``
  (scale-out: workers on any number of machines, one queue per kind of work, see :data:`QUEUES`);
- ``HUIJU_CELERY_BROKER_URL``: the Celery broker (default ``redis://127.0.0.1:6379/0``).

A secret setting (``HUIJU_WAREHOUSE_URL``, ``HUIJU_PSEUDONYM_KEY``, ``HUIJU_DB_PASSWORD_<ROLE>``, the portal's
Airflow password) may instead name a file holding it, as ``<NAME>_FILE`` (a container's ``/run/secrets/…``):
see :func:`secret_setting`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

TIMEZONE = "Asia/Shanghai"
#: The executors the platform is configured and tested with.
EXECUTORS = ("LocalExecutor", "CeleryExecutor")
#: Celery queues, one per kind of work, so each kind can get workers of its own (``airflow celery worker -q``).
QUEUES = ("ingest", "transform", "push", "notices")


class _Folder:
    """A folder the platform uses, ``<root>/<name>`` of the settings (``root``: ``var`` or ``home``)."""

    def __init__(self, root: str, name: str, doc: str) -> None:
        self.root, self.name, self.__doc__ = root, name, doc

    def __get__(self, settings: Settings | None, owner: type) -> Any:
        return self if settings is None else getattr(settings, self.root) / self.name


@dataclass(frozen=True)
class Settings:
    """Resolved paths and switches for one process."""

    home: Path
    var: Path
    config_dir: Path
    warehouse_url: str | None
    demo: bool = False
    portal_url: str = "http://127.0.0.1:8081/"
    executor: str = "LocalExecutor"
    celery_broker_url: str = "redis://127.0.0.1:6379/0"

    archive_dir: ClassVar[_Folder] = _Folder("var", "archive", "Content-addressed store of every original received.")
    inbox_dir: ClassVar[_Folder] = _Folder("var", "inbox", "The departments' inbox folders (one per source).")
    outbox_dir: ClassVar[_Folder] = _Folder("var", "outbox", "What goes back to departments (feedback workbooks).")
    pgdata_dir: ClassVar[_Folder] = _Folder("var", "pgdata", "Data directory of the embedded PostgreSQL.")
    airflow_home: ClassVar[_Folder] = _Folder("var", "airflow", "AIRFLOW_HOME: config, logs, the scheduler's state.")
    dbt_project_dir: ClassVar[_Folder] = _Folder("home", "dbt_project", "The dbt project (staging → … → share).")
    dags_dir: ClassVar[_Folder] = _Folder("home", "dags", "Airflow's DAG folder.")


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
        warehouse_url=secret_setting("HUIJU_WAREHOUSE_URL"),
        demo=os.environ.get("HUIJU_DEMO", "").strip().lower() in {"1", "true", "yes", "on"},
        portal_url=_portal_url(),
        executor=_executor(),
        celery_broker_url=secret_setting("HUIJU_CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0",
    )


def secret_setting(name: str) -> str | None:
    """The value of environment variable ``name``, or the content of the file ``<name>_FILE`` names, or None.

    Secrets stay out of the environment of a container (visible to `docker inspect`): compose mounts
    them as files and points ``<name>_FILE`` at them.
    """
    value = os.environ.get(name)
    if value:
        return value
    path = os.environ.get(f"{name}_FILE")
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise ValueError(f"{name}_FILE={path}: cannot read the secret ({exc.strerror})") from exc


def _executor() -> str:
    name = os.environ.get("HUIJU_EXECUTOR") or "LocalExecutor"
    if name not in EXECUTORS:
        raise ValueError(f"HUIJU_EXECUTOR={name!r}: expected one of {', '.join(EXECUTORS)}")
    return name


def _portal_url() -> str:
    url = os.environ.get("HUIJU_PORTAL_URL") or (
        f"http://{os.environ.get('HUIJU_PORTAL_HOST') or '127.0.0.1'}:{os.environ.get('HUIJU_PORTAL_PORT') or 8081}/")
    return url if url.endswith("/") else url + "/"


def portal_batch_url(load_id: str) -> str:
    """The portal page of one batch (报送记录 → the batch), where its department downloads the feedback workbook."""
    return f"{get_settings().portal_url}history/{quote(load_id, safe='')}"
