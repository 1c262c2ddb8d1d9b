"""The PostgreSQL warehouse: find or start it, connect, and keep its schemas current.

With ``HUIJU_WAREHOUSE_URL`` unset, an embedded PostgreSQL 16 (the ``pgserver`` wheel) is
started under ``var/pgdata`` and left running for the next process; every entry point
calls :func:`warehouse_url`, so whichever comes first starts it.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import psycopg

from huiju.settings import get_settings

log = logging.getLogger(__name__)

WAREHOUSE_DB = "huiju"
AIRFLOW_DB = "airflow"
SCHEMAS = ("raw", "quarantine", "ops")

# Bulk loads write a lot of WAL; the defaults checkpoint every 1 GB and slow COPY down.
_EMBEDDED_TUNING = {"max_wal_size": "4GB", "checkpoint_timeout": "15min"}


def _embedded_server_url() -> str:
    # pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR it warns and uses /tmp, which is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver  # why: only needed when no server is configured

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    settings = get_settings()
    settings.pgdata_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(settings.pgdata_dir, cleanup_mode=None)
    return server.get_uri()


def stop_embedded() -> bool:
    """Stop the embedded PostgreSQL under ``var/pgdata`` if it runs; True if it was stopped."""
    pgdata = get_settings().pgdata_dir
    if not (pgdata / "postmaster.pid").exists():
        return False
    import pgserver  # why: only needed when no server is configured

    pgserver.get_server(pgdata, cleanup_mode="stop").cleanup()
    return True


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def server_url() -> str:
    """URL of the PostgreSQL server (its maintenance database), starting the embedded one if needed."""
    configured = get_settings().warehouse_url
    return configured if configured else _embedded_server_url()


def ensure_database(url: str, database: str) -> str:
    """Create ``database`` on the server of ``url`` if it is missing; return its URL."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
        raise ValueError(f"database name {database!r} must be lower-case letters, digits and _")
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'create database "{database}"')
    return with_database(url, database)


def warehouse_url() -> str:
    """URL of the warehouse database, ready to use (server started, schemas migrated)."""
    configured = get_settings().warehouse_url
    if configured:
        url = configured
    else:
        base = _embedded_server_url()
        url = ensure_database(base, WAREHOUSE_DB)
        _tune_embedded(base)
    migrate(url)
    return url


def _tune_embedded(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for name, value in _EMBEDDED_TUNING.items():
            conn.execute(f"alter system set {name} = '{value}'")
        conn.execute("select pg_reload_conf()")


def sqlalchemy_url(url: str, driver: str = "psycopg") -> str:
    """The psycopg-style URL rewritten for SQLAlchemy (``postgresql+<driver>://``)."""
    parts = urlsplit(url)
    return urlunsplit((f"postgresql+{driver}", parts.netloc, parts.path, parts.query, parts.fragment))


def libpq_params(url: str) -> dict[str, str]:
    """Host, port, user, password and database of ``url``, as dbt's profile wants them."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return {
        "host": query.pop("host", parts.hostname or "localhost"),
        "port": str(parts.port or query.pop("port", "5432")),
        "user": parts.username or "postgres",
        "password": parts.password or "",
        "dbname": parts.path.lstrip("/") or "postgres",
        "extra": urlencode(query),
    }


@contextmanager
def connect(url: str | None = None) -> Iterator[psycopg.Connection]:
    """A connection to the warehouse; commits on success, rolls back on error."""
    with psycopg.connect(url or warehouse_url()) as conn:
        yield conn


_MIGRATED: set[str] = set()


def migrate(url: str) -> None:
    """Apply the platform's SQL migrations (``huiju/sql/NNN_*.sql``) that are not yet applied.

    Each file runs in its own transaction under an advisory lock, so concurrent
    processes starting at once apply each migration exactly once.
    """
    if url in _MIGRATED:
        return
    files = sorted(
        (entry for entry in resources.files("huiju.sql").iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    with psycopg.connect(url) as conn:
        conn.execute("select pg_advisory_xact_lock(hashtext('huiju.migrate'))")
        conn.execute("create schema if not exists ops")
        conn.execute(
            "create table if not exists ops.schema_migrations"
            " (name text primary key, applied_at timestamptz not null default now())"
        )
        applied = {row[0] for row in conn.execute("select name from ops.schema_migrations")}
        for entry in files:
            if entry.name in applied:
                continue
            log.info("applying migration %s", entry.name)
            conn.execute(entry.read_text(encoding="utf-8"))
            conn.execute("insert into ops.schema_migrations (name) values (%s)", (entry.name,))
        conn.commit()
        _bootstrap_calendar(conn)
    _MIGRATED.add(url)


def _bootstrap_calendar(conn: psycopg.Connection) -> None:
    """A new warehouse gets the working-day calendar at once (the monitoring run keeps it current).

    A mistaken override file must not stop the warehouse: it is logged here, and the monitoring run
    and ``huiju check-config`` report it to stewards.
    """
    from huiju.registry import ConfigError  # why: the warehouse bootstrap needs no configuration until here
    from huiju.workdays import sync_work_calendar  # why: as above

    try:
        sync_work_calendar(conn)
    except ConfigError as exc:
        log.warning("working-day calendar not written to the warehouse: %s", exc)
    conn.commit()
