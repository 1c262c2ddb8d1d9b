"""The PostgreSQL warehouse: find or start it, connect, and keep its schemas current.

With ``HUIJU_WAREHOUSE_URL`` unset, an embedded PostgreSQL 16 (the ``pgserver`` wheel) is
started under ``var/pgdata`` and left running for the next process; every entry point
calls :func:`warehouse_url`, so whichever comes first starts it. The embedded server asks every
connection for a password (SCRAM-SHA-256, :func:`_require_passwords`), its own socket included.

Least privilege (huiju/sql/160_roles.sql): the platform never connects as a superuser but once,
in :func:`bootstrap` — the one-time step that creates the owner role (:data:`OWNER_ROLE`, not a
superuser), the components' roles and the databases, and hands the warehouse to the owner. The owner
runs the migrations (:func:`migrate`, :func:`warehouse_url`); every component connects with its own
login role, :data:`COMPONENT_ROLES`, through :func:`role_url` / :func:`connect` — the one place that
knows which component uses which role. Each role's password is a random secret of its own
(huiju.credentials).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import subprocess
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
    "push": "huiju_push",  # pushes: reads credit/share, writes ops.push_*, alone reads push_private (180, 181)
    # 共享交换: requests, grants, the audit trail (insert-only), provisioning through its functions (migration 210)
    "sharing": "huiju_sharing",
    "airflow": "huiju_airflow",  # owns Airflow's metadata database, nothing in the warehouse
}

#: The role that owns the warehouse database, its platform schemas (ops, raw, quarantine, dbt_state, portal)
#: and the tables in them, and runs the migrations: LOGIN and CREATEROLE (the migrations create and grant
#: the components' roles; PostgreSQL 16 limits it to roles it holds ADMIN on), never a superuser, no CREATEDB.
OWNER_ROLE = "huiju_owner"

#: The embedded server's superuser: only :func:`bootstrap` uses it (and the tests, to make their databases).
EMBEDDED_ADMIN = "postgres"


#: The group roles the owner acts as in migrations (``alter … owner to``, ``alter default privileges for role``).
_OWNER_ACTS_AS = frozenset({COMPONENT_ROLES["landing"], COMPONENT_ROLES["transformation"]})


class BootstrapNeeded(RuntimeError):
    """The warehouse has not been bootstrapped and no admin role was given to do it."""

# The embedded server's client authentication: a password (SCRAM-SHA-256) on the socket and on loopback.
_SCRAM_ONLY_HBA = """# Written by huiju.warehouse: every connection proves a password (SCRAM-SHA-256); no trust.
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""


def login_role(component: str) -> str:
    """The login role ``component`` connects as (its group role of :data:`COMPONENT_ROLES` + ``_login``).

    ``"owner"`` is the owner role (:data:`OWNER_ROLE`): migrations and maintenance only.
    """
    if component == "owner":
        return OWNER_ROLE
    if component not in COMPONENT_ROLES:
        raise ValueError(f"unknown component {component!r}: one of owner, {', '.join(COMPONENT_ROLES)}")
    return COMPONENT_ROLES[component] + "_login"


def platform_logins() -> list[str]:
    """Every role the platform logs in as: the owner and each component's login role."""
    return [OWNER_ROLE, *(login_role(component) for component in COMPONENT_ROLES)]


def with_credentials(url: str, user: str, password: str) -> str:
    """The same server and database as ``url``, with ``user`` and ``password``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def role_url(component: str, url: str | None = None) -> str:
    """The URL ``component`` connects with: the database of ``url`` (default the warehouse) as its login role.

    Only the server and database of ``url`` are used; the password is the role's own (huiju.credentials).
    """
    login = login_role(component)
    return with_credentials(url or warehouse_url(), login, credentials.password(login))


def _embedded_server() -> str:
    """The embedded server's URL, without credentials: started, and asking for passwords, if it was not."""
    # pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR it warns and uses /tmp, which is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver  # why: only needed when no server is configured

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    settings = get_settings()
    private_root(settings.pgdata_dir.parent)  # var/: the server's own OS user must reach var/pgdata
    server = pgserver.get_server(settings.pgdata_dir, cleanup_mode=None)
    _require_passwords(settings.pgdata_dir, server.get_uri())  # first start: part of the bootstrap
    return server.get_uri()


def _require_passwords(pgdata: Path, trust_url: str) -> None:
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
        psycopg.connect(with_credentials(trust_url, EMBEDDED_ADMIN, credentials.password(EMBEDDED_ADMIN))).close()


def stop_embedded() -> bool:
    """Stop the embedded PostgreSQL under ``var/pgdata`` if it runs; True if it was stopped."""
    pgdata = get_settings().pgdata_dir
    if not (pgdata / "postmaster.pid").exists():
        return False
    import pgserver  # why: only needed when no server is configured

    # pg_ctl itself, not pgserver's handle: pgserver stops a server only when the caller holds its last handle,
    # and every process that ever connected left one (the embedded server is started with cleanup_mode=None).
    pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    owner = pgdata.stat().st_uid  # under root, pgserver runs PostgreSQL as a system user of its own
    done = subprocess.run([str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "stop"], capture_output=True,
                          text=True, user=owner if os.geteuid() == 0 and owner != 0 else None)
    if done.returncode and (pgdata / "postmaster.pid").exists():
        raise RuntimeError(f"the embedded PostgreSQL in {pgdata} did not stop: {done.stderr.strip()}")
    return done.returncode == 0


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


@contextmanager
def server_wide_lock(url: str, name: str) -> Iterator[None]:
    """Hold advisory lock ``name`` for the whole server ``url`` is on, not only its database.

    PostgreSQL's advisory locks belong to a database, but roles belong to the server: processes
    bootstrapping or migrating two databases of one server at once (the tests' workers, two platforms
    on one server) would otherwise alter the same role together ("tuple concurrently updated"). The
    lock is taken in the server's maintenance database; a role that may not connect there gets none
    (each caller's own per-database lock still holds).
    """
    try:
        holder = psycopg.connect(with_database(url, "postgres"), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError:
        yield
        return
    with holder:
        holder.execute("select pg_advisory_lock(hashtext(%s))", (name,))
        yield


def server_url() -> str:
    """The admin's URL of the PostgreSQL server (its maintenance database), starting the embedded one if needed.

    For :func:`bootstrap` (and the tests, which make databases of their own) only: nothing at run time connects
    with it.
    """
    configured = get_settings().warehouse_url
    if configured:
        return configured
    return with_credentials(_embedded_server(), EMBEDDED_ADMIN, credentials.password(EMBEDDED_ADMIN))


def ensure_database(url: str, database: str) -> str:
    """Create ``database`` on the server of ``url`` if it is missing; return its URL."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
        raise ValueError(f"database name {database!r} must be lower-case letters, digits and _")
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'create database "{database}"')
    return with_database(url, database)


def side_database(suffix: str, owner: str, login: str | None = None, url: str | None = None) -> str:
    """A database of its own beside the warehouse (``<warehouse db>_<suffix>``), owned by role ``owner``.

    For a component that keeps its data apart (Airflow's metadata: ``owner`` its group role, ``login``
    its login role) or the demo's simulated department databases. Returns its URL as ``login`` (default
    ``owner``, then a login role itself). Found ready, nothing else connects; missing, it is made in the
    bootstrap (:func:`bootstrap_side_database`) — the database, and ``owner`` where it does not exist.
    """
    location = url or _warehouse_location()
    name = f"{libpq_params(location)['dbname']}_{suffix}"
    target = with_database(role_url("owner", location), name)
    login = login or owner
    login_url = with_credentials(target, login, credentials.password(login))
    try:
        with psycopg.connect(login_url, connect_timeout=10) as conn:
            ready = conn.execute("select pg_get_userbyid(datdba) = %s from pg_database"
                                 " where datname = current_database()", (owner,)).fetchone()[0]
    except psycopg.OperationalError:
        ready = False
    if not ready:
        bootstrap_side_database(_admin_url(location), name, owner, login)
    return login_url


def bootstrap_side_database(admin_url: str, name: str, owner: str, login: str) -> None:
    """Bootstrap (admin): database ``name`` on the server of ``admin_url``, owned by ``owner``, reached as ``login``.

    ``owner`` and ``login`` are created where missing (``login`` a member of ``owner``) and ``login`` given its
    password; only ``owner`` may connect. What an earlier version created there as the admin passes to ``owner``.
    """
    with psycopg.connect(with_database(admin_url, "postgres"), autocommit=True) as conn:
        for role in dict.fromkeys((owner, login)):
            _create_role(conn, role, login=role == login)
        if login != owner:
            conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(owner), sql.Identifier(login)))
        conn.execute(sql.SQL("alter role {} with login password {}").format(
            sql.Identifier(login), sql.Literal(credentials.scram_verifier(credentials.password(login)))))
    url = ensure_database(with_database(admin_url, "postgres"), name)
    with psycopg.connect(with_database(admin_url, name), autocommit=True) as conn:
        _hand_objects_to(conn, owner, schemas=("public",))
        conn.execute(sql.SQL("alter database {} owner to {}").format(sql.Identifier(name), sql.Identifier(owner)))
        conn.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(name)))
        conn.execute("revoke all on schema public from public")  # its owner (pg_database_owner) keeps its rights
    log.info("bootstrap: database %s owned by %s", libpq_params(url)["dbname"], owner)


def _create_role(conn: psycopg.Connection, role: str, *, login: bool) -> None:
    """Create ``role`` (NOLOGIN unless ``login``) where it does not exist; a concurrent creator is no error."""
    if conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
        return
    # another process's bootstrap may make it meanwhile
    with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
        conn.execute(sql.SQL("create role {} {}").format(sql.Identifier(role),
                                                         sql.SQL("login" if login else "nologin")))


def _hand_objects_to(conn: psycopg.Connection, owner: str, schemas: tuple[str, ...] | None = None) -> None:
    """Give ``owner`` what superusers own in this database (outside the system schemas): schemas, relations, routines.

    ``schemas``: only those (default every schema but the system's). Sequences owned by a column follow their table.
    """
    only = schemas is not None
    conn.execute(sql.SQL(r"""
        do $$
        declare
            item record;
        begin
            for item in
                select n.nspname from pg_namespace n join pg_roles r on r.oid = n.nspowner
                where r.rolsuper and n.nspname not like 'pg\_%' and n.nspname <> 'information_schema'
                  and n.nspname <> 'public' and (not {only} or n.nspname = any({schemas}))
            loop
                execute format('alter schema %I owner to %I', item.nspname, {owner});
            end loop;
            for item in
                select c.oid::regclass as relation, c.relkind from pg_class c
                join pg_namespace n on n.oid = c.relnamespace join pg_roles r on r.oid = c.relowner
                where r.rolsuper and n.nspname not like 'pg\_%' and n.nspname <> 'information_schema'
                  and (not {only} or n.nspname = any({schemas}))
                  and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
                  and not (c.relkind = 'S' and exists (select from pg_depend d where d.classid = 'pg_class'::regclass
                           and d.objid = c.oid and d.deptype in ('a', 'i')))
            loop
                execute format('alter %s %s owner to %I',
                               case item.relkind when 'v' then 'view' when 'm' then 'materialized view'
                                                 when 'S' then 'sequence' when 'f' then 'foreign table'
                                                 else 'table' end, item.relation, {owner});
            end loop;
            for item in
                select p.oid::regprocedure as routine from pg_proc p
                join pg_namespace n on n.oid = p.pronamespace join pg_roles r on r.oid = p.proowner
                where r.rolsuper and n.nspname not like 'pg\_%' and n.nspname <> 'information_schema'
                  and (not {only} or n.nspname = any({schemas}))
            loop
                execute format('alter routine %s owner to %I', item.routine, {owner});
            end loop;
        end
        $$""").format(only=sql.Literal(only), schemas=sql.Literal(list(schemas or ())), owner=sql.Literal(owner)))


def _warehouse_location() -> str:
    """The warehouse database's URL as configured (credentials: whichever were given), without connecting."""
    configured = get_settings().warehouse_url
    return configured if configured else with_database(_embedded_server(), WAREHOUSE_DB)


def _admin_url(location: str) -> str:
    """The admin's URL for the bootstrap, to the database of ``location``: the embedded server's superuser, or the
    role in ``HUIJU_WAREHOUSE_URL`` when it is not one of the platform's own."""
    configured = get_settings().warehouse_url
    if not configured:
        return with_credentials(location, EMBEDDED_ADMIN, credentials.password(EMBEDDED_ADMIN))
    params = libpq_params(configured)
    if params["user"] in platform_logins():
        raise BootstrapNeeded(
            f"the warehouse {params['dbname']!r} is not bootstrapped, or a platform role cannot log in with its "
            "password: run `huiju warehouse` once with HUIJU_WAREHOUSE_URL naming an admin role (a superuser, or "
            "one with CREATEROLE and CREATEDB), then set it back to the URL that prints; each role's password is "
            "HUIJU_DB_PASSWORD_<ROLE> or in var/secrets")
    return with_database(configured, libpq_params(location)["dbname"])


def warehouse_url() -> str:
    """URL of the warehouse database as the owner role (:data:`OWNER_ROLE`), bootstrapped and migrated.

    The owner's URL is for migrations and maintenance; components connect with :func:`role_url` /
    :func:`connect`. Only when the owner cannot log in or does not own the warehouse yet does this run
    the one-time :func:`bootstrap` as the admin.
    """
    location = _warehouse_location()
    owner = role_url("owner", location)
    if owner in _MIGRATED:
        return owner
    if not _bootstrapped(owner):
        if not get_settings().warehouse_url:
            ensure_database(server_url(), WAREHOUSE_DB)
        bootstrap(_admin_url(location))
    migrate(owner)
    return owner


def _bootstrapped(owner_url: str) -> bool:
    """True when the owner role logs in, owns the warehouse, and no superuser owns anything of the platform's there."""
    try:
        with psycopg.connect(owner_url, connect_timeout=10) as conn:
            return bool(conn.execute(
                "select pg_get_userbyid(datdba) = current_user"
                " and not exists (select from pg_namespace n join pg_roles r on r.oid = n.nspowner where r.rolsuper"
                "                 and n.nspname in ('ops', 'raw', 'quarantine', 'dbt_state', 'portal'))"
                " from pg_database where datname = current_database()").fetchone()[0])
    except psycopg.OperationalError:
        return False


def bootstrap(admin_url: str) -> str:
    """The one-time bootstrap, and the platform's only use of a superuser; returns the owner's URL.

    As the admin of ``admin_url`` (the embedded server's ``postgres``, or the role in ``HUIJU_WAREHOUSE_URL``
    when it is not the owner's): create the owner role (:data:`OWNER_ROLE`; LOGIN CREATEROLE, not a
    superuser) and the components' roles (huiju/sql/160_roles.sql's, the owner holding ADMIN on each),
    give the owner its password, hand it the database and whatever an earlier version created there as
    the admin, tune the embedded server; then :func:`migrate` as the owner. Safe to run again.
    """
    database = libpq_params(admin_url)["dbname"]
    with server_wide_lock(admin_url, "huiju.bootstrap"), psycopg.connect(admin_url, autocommit=True) as conn:
        _create_role(conn, OWNER_ROLE, login=True)
        conn.execute(sql.SQL("alter role {} with login createrole nocreatedb nosuperuser password {}").format(
            sql.Identifier(OWNER_ROLE), sql.Literal(credentials.scram_verifier(credentials.password(OWNER_ROLE)))))
        # PostgreSQL 16: a role the owner creates in a later migration is its own to grant and to act as.
        conn.execute(sql.SQL("alter role {} set createrole_self_grant = 'set, inherit'").format(
            sql.Identifier(OWNER_ROLE)))
        for group in COMPONENT_ROLES.values():
            # ADMIN on every role (the migrations grant them, and set the login roles' passwords); acting as one
            # only where a migration must (it hands dbt's layers to the transformation, sets the landing's
            # default privileges) — never as Airflow's, which owns a database the owner has no business in.
            acts = "true" if group in _OWNER_ACTS_AS else "false"
            for role, login in ((group, False), (group + "_login", True)):
                _create_role(conn, role, login=login)
                conn.execute(sql.SQL("grant {role} to {owner} with admin true, inherit {acts}, set {acts}").format(
                    role=sql.Identifier(role), owner=sql.Identifier(OWNER_ROLE), acts=sql.SQL(acts)))
        _hand_objects_to(conn, OWNER_ROLE)
        conn.execute(sql.SQL("alter database {} owner to {}").format(sql.Identifier(database),
                                                                    sql.Identifier(OWNER_ROLE)))
        if not get_settings().warehouse_url:
            for name, value in _EMBEDDED_TUNING.items():
                conn.execute(sql.SQL("alter system set {} = {}").format(sql.Identifier(name), sql.Literal(value)))
            conn.execute("select pg_reload_conf()")
    log.info("bootstrap: warehouse %s handed to %s", database, OWNER_ROLE)
    owner = role_url("owner", admin_url)
    migrate(owner)
    return owner


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
def connect(url: str | None = None, *, role: str) -> Iterator[psycopg.Connection]:
    """A connection to the warehouse as ``role``; commits on success, rolls back on error.

    ``role``: the component connecting (a key of :data:`COMPONENT_ROLES`), which connects as its login
    role to the database of ``url`` (default the warehouse), or ``"owner"`` for migrations and maintenance.
    There is no default: nothing connects as the admin, nor as the owner, without saying so.
    """
    with psycopg.connect(role_url(role, url)) as conn:
        yield conn


_MIGRATED: set[str] = set()


def migrate(url: str) -> None:
    """Apply the platform's SQL migrations (``huiju/sql/NNN_*.sql``) that are not yet applied, as the owner role.

    ``url`` is the owner's (:func:`warehouse_url`); any other role's is taken for the admin's, and the
    database is bootstrapped first (:func:`bootstrap`: the tests' own databases). Each file runs in its own
    transaction under an advisory lock, so concurrent processes starting at once apply each migration
    exactly once.
    """
    if url in _MIGRATED:
        return
    if libpq_params(url)["user"] != OWNER_ROLE:
        bootstrap(url)
        _MIGRATED.add(url)
        return
    files = sorted(
        (entry for entry in resources.files("huiju.sql").iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    with server_wide_lock(url, "huiju.migrate"), psycopg.connect(url) as conn:
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
        _bootstrap_division_codes(conn)  # under the migrations' lock: one writer of the function at a time
        conn.commit()
        _bootstrap_calendar(conn)
        _set_login_passwords(conn)
    _MIGRATED.add(url)


def _bootstrap_division_codes(conn: psycopg.Connection) -> None:
    """The national division list as the bitmap the 公民身份号码 rule reads (migration 231), if it changed."""
    from huiju.divisions import known_region_codes  # why: the list is read only here, at bootstrap

    bitmap = bytearray(1_000_000 // 8)
    for code in known_region_codes():
        number = int(code)
        bitmap[number // 8] |= 1 << (number % 8)  # get_bit numbers a byte's bits from its least significant
    current = conn.execute("select encode(sha256(ops.division_code_bitmap()), 'hex')").fetchone()[0]
    if current != hashlib.sha256(bitmap).hexdigest():
        conn.execute("create or replace function ops.division_code_bitmap() returns bytea"
                     " language sql immutable parallel safe"
                     f" as $$ select '\\x{bitmap.hex()}'::bytea $$")


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

    Run as the owner (CREATEROLE, ADMIN on each login role). Only a SCRAM verifier reaches the server; a
    role already given its password (:func:`huiju.credentials.password_stamp`, its comment) is left alone,
    so processes starting together do not rewrite the same role.
    """
    server = (str(conn.info.host), str(conn.info.port))
    if server in _PASSWORDS_SET:
        return
    logins = [login_role(component) for component in COMPONENT_ROLES]
    conn.execute("select pg_advisory_xact_lock(hashtext('huiju.login_passwords'))")
    stamps = dict(conn.execute("select rolname, shobj_description(oid, 'pg_authid') from pg_roles"
                               " where rolname = any(%s)", (logins,)).fetchall())
    for login in logins:
        secret = credentials.password(login)
        stamp = credentials.password_stamp(secret)
        if stamps.get(login) != stamp:
            conn.execute(sql.SQL("alter role {} with login password {}").format(
                sql.Identifier(login), sql.Literal(credentials.scram_verifier(secret))))
            conn.execute(sql.SQL("comment on role {} is {}").format(sql.Identifier(login), sql.Literal(stamp)))
    conn.commit()
    _PASSWORDS_SET.add(server)
