"""Airflow's home, configuration and metadata database under ``var/airflow`` (no Airflow import here).

Everything the platform runs through Airflow gets its environment from :func:`airflow_environ`,
so the CLI, the demo, the tests and ``make up`` all drive the same instance.
"""

from __future__ import annotations

import configparser
import io
import json
import os
import secrets
from pathlib import Path

from huiju.private_files import private_dir, write_private
from huiju.settings import TIMEZONE, get_settings
from huiju.warehouse import COMPONENT_ROLES, login_role, side_database, sqlalchemy_url, warehouse_url

ADMIN_USER = "admin"
#: The account the departments' portal asks for ingest runs with: role ``user`` of the simple auth
#: manager (DAGs and their runs; no connections, variables, pools or configuration).
PORTAL_USER = "huiju_portal"
#: Every account of this instance and its role.
USERS = {ADMIN_USER: "admin", PORTAL_USER: "user"}
DEFAULT_PORT = 8080


def _metadata_db_url(warehouse: str) -> str:
    """Airflow's metadata database beside the warehouse (``<warehouse db>_airflow``), owned by Airflow's role and
    reached as its login role — never as the admin or the warehouse's owner (made by the bootstrap when missing)."""
    return side_database("airflow", COMPONENT_ROLES["airflow"], login_role("airflow"), warehouse)


def _persistent_secret(path: Path) -> str:
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32))
    return path.read_text(encoding="utf-8").strip()


def ui_port() -> int:
    """The port the Airflow UI/API listens on (``HUIJU_UI_PORT``, default 8080)."""
    return int(os.environ.get("HUIJU_UI_PORT", DEFAULT_PORT))


def account_password(user: str) -> str:
    """The password of one of :data:`USERS` (simple auth manager), created once under var/airflow (mode 0600)."""
    home = private_dir(get_settings().airflow_home)
    path = home / "simple_auth_manager_passwords.json"
    passwords = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if any(name not in passwords for name in USERS):
        passwords = {name: passwords.get(name) or secrets.token_urlsafe(9) for name in USERS} | passwords
        write_private(path, json.dumps(passwords))
    return passwords[user]


def admin_password() -> str:
    """The stewards' demo login password."""
    return account_password(ADMIN_USER)


def write_airflow_config() -> Path:
    """Write ``var/airflow/airflow.cfg`` (mode 0600) for this checkout and warehouse; return its path."""
    settings = get_settings()
    home = private_dir(settings.airflow_home)
    warehouse = warehouse_url()
    metadata = _metadata_db_url(warehouse)
    admin_password()
    port = ui_port()
    config = configparser.ConfigParser(interpolation=None)
    config.read_dict({
        "core": {
            "dags_folder": str(settings.dags_dir),
            "load_examples": "False",
            "default_timezone": TIMEZONE,
            # The LocalExecutor is Airflow's, its workers forked with the tasks' modules imported (see there).
            "executor": ("huiju_airflow.executors.PreloadingLocalExecutor" if settings.executor == "LocalExecutor"
                         else settings.executor),
            "parallelism": "8",
            "dags_are_paused_at_creation": "True",
            "auth_manager": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "simple_auth_manager_users": ",".join(f"{name}:{role}" for name, role in USERS.items()),
            "simple_auth_manager_passwords_file": str(home / "simple_auth_manager_passwords.json"),
            "execution_api_server_url": f"http://127.0.0.1:{port}/execution/",
            "fernet_key": _persistent_secret(home / ".fernet_key"),
        },
        "database": {"sql_alchemy_conn": sqlalchemy_url(metadata, "psycopg2")},
        "api": {"host": "127.0.0.1", "port": str(port), "base_url": f"http://127.0.0.1:{port}"},
        "api_auth": {"jwt_secret": _persistent_secret(home / ".jwt_secret")},
        # Task logs hold what the tasks print: private like every other file of the platform.
        "logging": {"base_log_folder": str(home / "logs"), "logging_level": "INFO",
                    "file_task_handler_new_file_permissions": "0o600",
                    "file_task_handler_new_folder_permissions": "0o700"},
        "scheduler": {"enable_health_check": "False"},
        "dag_processor": {"refresh_interval": "30"},
        "webserver": {"default_ui_timezone": TIMEZONE},
    })
    if settings.executor == "CeleryExecutor":
        config.read_dict({"celery": _celery_config(settings.celery_broker_url, metadata),
                          # Unacknowledged messages are redelivered after this long; longer than the longest
                          # task (a full dbt build), shorter than Celery's 24 h default that a lost message
                          # would otherwise wait. A worker that dies is noticed sooner by the scheduler
                          # (missing task heartbeats), which retries the task on another worker.
                          "celery_broker_transport_options": {"visibility_timeout": "21600"}})
    text = io.StringIO()
    config.write(text)
    # Written aside and renamed into place (write_private): Airflow processes started side by side (the demo's
    # DAG runs) each rewrite it, and one reading a half-written file falls back to defaults. 0600: it holds secrets.
    return write_private(home / "airflow.cfg", text.getvalue())


def _celery_config(broker_url: str, metadata_url: str) -> dict[str, str]:
    """The ``[celery]`` section: Redis carries the queued tasks, the metadata database keeps their results."""
    return {
        "broker_url": broker_url,
        # Task state lives in the metadata database (Redis keeps nothing on disk): a restarted broker loses
        # only queued messages, which the scheduler re-queues (task_adoption / stalled-queued checks).
        "result_backend": "db+" + sqlalchemy_url(metadata_url, "psycopg2"),
        "worker_concurrency": "4",
    }


def airflow_environ() -> dict[str, str]:
    """The process environment for running Airflow commands against this platform."""
    settings = get_settings()
    config = write_airflow_config()
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(settings.airflow_home),
        "AIRFLOW_CONFIG": str(config),
        "HUIJU_HOME": str(settings.home),
        "HUIJU_VAR": str(settings.var),
        "HUIJU_WAREHOUSE_URL": warehouse_url(),
        "TZ": TIMEZONE,
    })
    return env
