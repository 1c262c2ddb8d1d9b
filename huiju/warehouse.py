"""The PostgreSQL warehouse: find or start it, connect, and keep its schemas current.

With ``HUIJU_WAREHOUSE_URL`` unset, an embedded PostgreSQL 16 (the ``pgserver`` wheel) is
started under ``var/pgdata`` and left running for the next process; every entry point
calls :func:`warehouse_url`, so whichever comes first starts it. The embedded server asks every
connection for a password (SCRAM-SHA-256, :func:`_require_passwords`), its own socket included.

Least privilege (huiju/sql/160_roles.sql): :func:`warehouse_url` and :func:`migrate` are the
bootstrap, run as the owner/admin role (the URL configured, or the embedded server's ``postgres``);
every component connects with its own login role, :data:`COMPONENT_ROLES`, through
:func:`role_url` / :func:`connect` — the one place that knows which component uses which role.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from huiju import credentials
from huiju.private_files import private_root
from huiju.settings import get_settings

log = logging.getLogger(__name__)

WAREHOUSE_DB = "huiju"
AIRFLOW_DB = "airflow"
SCHEMAS = ("raw", "quarantine", "ops")

# Bulk loads write a lot of WAL; the defaults checkpoint every 1 GB and slow COPY down.
_EMBEDDED_TUNING = {"max_wal_size": "4GB", "checkpoint_timeout": "15min"}

#: The group role (NOLOGIN, holds the privileges) each component's login role belongs to; the login
#: role is the group's name + ``_login`` (:func:`login_role`). Created by huiju/sql/160_roles.sql.
COMPONENT_ROLES = {
    "landing": "huiju_landing",  # collection: creates and writes raw, writes the ledger (ops) and quarantine
    # GX, publication, feedback, notices, monitoring (submission ledger, anomalies): reads raw, writes quarantine, ops
    "validation": "huiju_validation",
    "transformation": "huiju_transform",  # dbt: reads raw/quarantine/ops, owns staging … share, dbt_state
    "share": "huiju_share_reader",  # a push/share consumer: the share schema (and views granted to it) only
    "portal": "huiju_portal",  # the departments' portal: its schema, plus landing and validation
    "dashboard": "huiju_dashboard",  # the stewards' dashboard (Airflow plugin): reads ops and quarantine only
    "airflow": "huiju_airflow",  # owns Airflow's metadata database, nothing in the warehouse
}

#: The embedded server's superuser: only the bootstrap (:func:`warehouse_url`, migrations) uses it.
EMBEDDED_ADMIN = "postgres"

# The embedded server's client authentication: a password (SCRAM-SHA-256) on the socket and on loopback.
_SCRAM_ONLY_HBA = """# Written by huiju.warehouse: every connection proves a password (SCRAM-SHA-256); no trust.
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""


def login_role(component: str) -> str:
    """The login role ``component`` connects as (its group role of :data:`COMPONENT_ROLES` + ``_login``)."""
    if component not in COMPONENT_ROLES:
        raise ValueError(f"unknown component {component!r}: one of {', '.join(COMPONENT_ROLES)}")
    return COMPONENT_ROLES[component] + "_login"


def with_credentials(url: str, user: str, password: str) -> str:
    """The same server and database as ``url``, with ``user`` and ``password``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def role_url(component: str, url: str | None = None) -> str:
    """The URL ``component`` connects with: ``url`` (an admin URL; default the warehouse) as its login role.

    A URL that is already the component's is returned as it is.
    """
    login = login_role(component)
    admin_url = url or warehouse_url()
    if libpq_params(admin_url)["user"] == login:
        return admin_url
    return with_credentials(admin_url, login, credentials.login_password(login, libpq_params(admin_url)["password"]))


def _embedded_server_url() -> str:
    # pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR it warns and uses /tmp, which is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver  # why: only needed when no server is configured

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    settings = get_settings()
    private_root(settings.pgdata_dir.parent)  # var/: the server's own OS user must reach var/pgdata
    admin_password = credentials.password(EMBEDDED_ADMIN)
    server = pgserver.get_server(settings.pgdata_dir, cleanup_mode=None)
    url = with_credentials(server.get_uri(), EMBEDDED_ADMIN, admin_password)
    _require_passwords(settings.pgdata_dir, server.get_uri(), url)
    return url


def _require_passwords(pgdata: Path, trust_url: str, admin_url: str) -> None:
    """Switch a freshly made embedded server from pgserver's trust authentication to SCRAM passwords.

    The superuser's password (var/secrets) is set first, then ``pg_hba.conf`` replaced and reloaded;
    under a lock, so processes starting together do it once. A server already switched is left alone.
    """
    hba = pgdata / "pg_hba.conf"
    if hba.read_text(encoding="utf-8") == _SCRAM_ONLY_HBA:
        return
    with credentials.lock("pg_hba"):
        if hba.read_text(encoding="utf-8") == _SCRAM_ONLY_HBA:
            return
        with psycopg.connect(trust_url, autocommit=True) as conn:
            conn.execute("alter system set password_encryption = 'scram-sha-256'")
            conn.execute(sql.SQL("alter role {} with password {}").format(
                sql.Identifier(EMBEDDED_ADMIN), sql.Literal(credentials.scram_verifier(
                    credentials.password(EMBEDDED_ADMIN)))))
            scratch = hba.with_suffix(".huiju")
            scratch.write_text(_SCRAM_ONLY_HBA, encoding="utf-8")
            original = hba.stat()  # the server may run as another system user (pgserver's, under root)
            os.chown(scratch, original.st_uid, original.st_gid)
            scratch.chmod(0o600)
            scratch.replace(hba)
            conn.execute("select pg_reload_conf()")
        # The reload is asynchronous: wait until the server asks for the password.
        for _ in range(200):
            try:
                psycopg.connect(trust_url, connect_timeout=5).close()
            except psycopg.OperationalError:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"the embedded PostgreSQL under {pgdata} still accepts connections without a password "
                               f"after pg_hba.conf was rewritten; see {pgdata / 'log'}")
    psycopg.connect(admin_url).close()


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


def hand_database_to(url: str, component: str) -> None:
    """Make ``component``'s group role the owner of the database at ``url`` (an admin URL) and all in it.

    For a database one component keeps to itself (Airflow's metadata): only its role may connect, and
    what an earlier version created there as the admin passes to it. Does nothing once done.
    """
    group = COMPONENT_ROLES[component]
    database = libpq_params(url)["dbname"]
    with psycopg.connect(url, autocommit=True) as conn:
        owner = conn.execute("select pg_get_userbyid(datdba) from pg_database where datname = current_database()"
                             ).fetchone()[0]
        if owner == group:
            return
        for relation, kind in conn.execute(
                "select format('%I.%I', n.nspname, c.relname), c.relkind from pg_class c"
                " join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'S')").fetchall():
            noun = {"v": "view", "m": "materialized view", "S": "sequence"}.get(kind, "table")
            conn.execute(sql.SQL("alter {} {} owner to {}").format(
                sql.SQL(noun), sql.SQL(relation), sql.Identifier(group)))
        conn.execute(sql.SQL("alter database {} owner to {}").format(sql.Identifier(database), sql.Identifier(group)))
        conn.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(database)))
        conn.execute("revoke all on schema public from public")  # its owner (pg_database_owner) keeps its rights


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
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or ""),
        "dbname": parts.path.lstrip("/") or "postgres",
        "extra": urlencode(query),
    }


@contextmanager
def connect(url: str | None = None, *, role: str | None = None) -> Iterator[psycopg.Connection]:
    """A connection to the warehouse; commits on success, rolls back on error.

    ``role``: the component connecting (a key of :data:`COMPONENT_ROLES`), which then connects as its
    login role to the database of ``url`` (default the warehouse). Without it the connection is the
    admin's: for the bootstrap and maintenance only.
    """
    target = url or warehouse_url()
    with psycopg.connect(role_url(role, target) if role else target) as conn:
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
        _set_login_passwords(conn)
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


_PASSWORDS_SET: set[tuple[str, str]] = set()


def _set_login_passwords(conn: psycopg.Connection) -> None:
    """Give each component's login role its password (var/secrets or the environment), once per server.

    Only a SCRAM verifier reaches the server. Where the admin may read ``pg_authid`` (a superuser), a
    role whose verifier already matches is left alone, so processes starting together do not race.
    """
    admin_password = conn.info.password or ""
    server = (conn.info.host, str(conn.info.port), hashlib.sha256(admin_password.encode()).hexdigest())
    if server in _PASSWORDS_SET:
        return
    logins = [login_role(component) for component in COMPONENT_ROLES]
    try:
        stored = dict(conn.execute("select rolname, rolpassword from pg_authid where rolname = any(%s)",
                                   (logins,)).fetchall())
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
        stored = {}
    for login in logins:
        secret = credentials.login_password(login, admin_password)
        if not credentials.verifier_matches(stored.get(login), secret):
            conn.execute(sql.SQL("alter role {} with login password {}").format(
                sql.Identifier(login), sql.Literal(credentials.scram_verifier(secret))))
    conn.commit()
    _PASSWORDS_SET.add(server)
