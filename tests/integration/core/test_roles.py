"""Least privilege in the warehouse (huiju/sql/160_roles.sql): each component's role can do its job and nothing more.

Every check connects as the component's own login role (huiju.warehouse.role_url), on the session's
migrated test warehouse; what a role may not do fails with PostgreSQL's "permission denied".
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from huiju import warehouse
from huiju.settings import get_settings

# 11010519491231002X is GB 11643-1999's own example ID number (a published test vector, no citizen's).

DENIED = psycopg.errors.InsufficientPrivilege


@pytest.fixture(scope="module")
def probes(pg_url: str) -> Iterator[str]:
    """A raw table as the landing makes it, a credit table and a share view as dbt makes them."""
    with psycopg.connect(pg_url) as conn:
        conn.execute("set local role huiju_landing")  # as huiju.landing.raw.ensure_raw_table
        conn.execute("create table raw.roles_probe (id_number text)")
        conn.execute("insert into raw.roles_probe values ('11010519491231002X')")
        conn.execute("reset role")
        conn.execute("set local role huiju_transform")  # as dbt (profiles.yml role)
        conn.execute("create table staging.roles_probe as select id_number from raw.roles_probe")
        conn.execute("create table credit.roles_probe as select id_number from raw.roles_probe")
        conn.execute("create view share.roles_probe as select left(id_number, 6) as region from credit.roles_probe")
    yield pg_url
    with psycopg.connect(pg_url) as conn:
        for relation in ("share.roles_probe", "credit.roles_probe", "staging.roles_probe", "raw.roles_probe"):
            conn.execute(f"drop {'view' if relation.startswith('share') else 'table'} {relation}")


def _as(component: str, url: str) -> psycopg.Connection:
    return psycopg.connect(warehouse.role_url(component, url), autocommit=True)


def _denied(component: str, url: str, statement: str) -> None:
    with _as(component, url) as conn, pytest.raises(DENIED):
        conn.execute(statement)


@pytest.mark.parametrize("component", sorted(warehouse.COMPONENT_ROLES))
def test_each_component_connects_as_its_own_login_role(component: str, probes: str) -> None:
    if component == "airflow":
        with pytest.raises(psycopg.OperationalError, match="CONNECT"):  # Airflow's role: its metadata DB only
            _as(component, probes)
        return
    with _as(component, probes) as conn:
        roles = conn.execute("select session_user, current_user, current_setting('is_superuser')").fetchone()
    # The session starts as the group (a role setting): what it creates belongs to the group.
    assert roles == (warehouse.login_role(component), warehouse.COMPONENT_ROLES[component], "off")


def test_the_landing_writes_raw_and_the_ledger_but_no_layer(probes: str) -> None:
    with _as("landing", probes) as conn:
        conn.execute("insert into raw.roles_probe values ('x')")
        conn.execute("delete from raw.roles_probe where id_number = 'x'")
        conn.execute("select count(*) from ops.loads").fetchone()
        conn.execute("select count(*) from quarantine.rows").fetchone()
    for statement in ("select * from credit.roles_probe", "insert into credit.roles_probe values ('x')",
                      "select * from staging.roles_probe", "create table credit.landed (x text)",
                      "select * from portal.accounts"):
        _denied("landing", probes, statement)


def test_validation_reads_raw_writes_quarantine_and_drops_nothing(probes: str) -> None:
    with _as("validation", probes) as conn:
        assert conn.execute("select count(*) from raw.roles_probe").fetchone()[0] >= 1
        conn.execute("select count(*) from quarantine.rows").fetchone()
        conn.execute("update ops.loads set status = status where false")
    for statement in ("insert into raw.roles_probe values ('x')", "drop table raw.roles_probe",
                      "drop table ops.loads", "truncate quarantine.rows", "create table raw.mine (x text)",
                      "select * from credit.roles_probe", "alter table ops.loads add column x text"):
        _denied("validation", probes, statement)


def test_the_transformation_reads_raw_and_builds_the_layers_but_writes_no_raw(probes: str) -> None:
    with _as("transformation", probes) as conn:
        assert conn.execute("select count(*) from raw.roles_probe").fetchone()[0] >= 1
        conn.execute("create table basic.roles_scratch as select 1 as one")
        conn.execute("drop table basic.roles_scratch")
        conn.execute("select count(*) from dbt_state.relation_fingerprint").fetchone()
    for statement in ("insert into raw.roles_probe values ('x')", "drop table raw.roles_probe",
                      "delete from quarantine.rows", "select * from portal.accounts"):
        _denied("transformation", probes, statement)


def test_the_share_reader_sees_the_share_schema_and_nothing_behind_it(probes: str) -> None:
    with _as("share", probes) as conn:
        assert conn.execute("select region from share.roles_probe").fetchall() == [("110105",)]
    for statement in ("select * from raw.roles_probe", "select * from staging.roles_probe",
                      "select * from credit.roles_probe", "select * from ops.loads",
                      "select * from quarantine.rows", "select * from portal.accounts",
                      "create table share.mine (x text)", "create temporary table mine (x text)",
                      "delete from share.roles_probe"):
        _denied("share", probes, statement)


def test_the_portal_has_its_schema_and_landing_but_no_layer(probes: str) -> None:
    with _as("portal", probes) as conn:
        conn.execute("select count(*) from portal.accounts").fetchone()
        conn.execute("select count(*) from raw.roles_probe").fetchone()
    for statement in ("select * from credit.roles_probe", "select * from staging.roles_probe",
                      "drop table portal.accounts"):
        _denied("portal", probes, statement)


def test_the_dashboard_reads_the_ledger_and_quarantine_and_writes_nothing(probes: str) -> None:
    with _as("dashboard", probes) as conn:
        conn.execute("select count(*) from ops.submissions").fetchone()
        conn.execute("select count(*) from quarantine.rows").fetchone()
    for statement in ("select * from raw.roles_probe", "select * from credit.roles_probe",
                      "select * from portal.accounts", "update ops.loads set status = status where false",
                      "delete from quarantine.rows", "insert into ops.notices (dedupe_key, kind, subject, body)"
                      " values ('x', 'x', 'x', 'x')", "create temporary table mine (x text)"):
        _denied("dashboard", probes, statement)


def test_only_the_push_role_reads_the_payloads_it_sends_with_ids_in_clear(probes: str) -> None:
    # What a credit platform entitled to the legal representative's ID number receives (migration 181).
    payload = '{"data":{"CF_FRDB_ZJHM":"11010519491231002X"},"record_id":"CF:ROLES"}'
    with _as("push", probes) as conn:
        conn.execute("insert into push_private.payloads values ('roles-probe', %s)", (payload,))
        assert conn.execute("select payload from push_private.payloads where content_hash = 'roles-probe'"
                            ).fetchone() == (payload,)
    try:
        # Not the stewards' dashboard, the share readers, monitoring (it runs as validation), nor anyone else;
        # and the outbox in ops, which they read, holds no payload to read instead.
        for component in ("dashboard", "share", "validation", "landing", "transformation", "portal"):
            for statement in ("select * from push_private.payloads", "select count(*) from push_private.payloads",
                              "copy push_private.payloads to stdout"):
                _denied(component, probes, statement)
        with _as("dashboard", probes) as conn:
            columns = {name for (name,) in conn.execute(
                "select column_name from information_schema.columns where table_schema = 'ops'"
                " and table_name in ('push_outbox', 'push_records', 'push_receipts', 'push_batches')")}
        assert "content_hash" in columns and "payload" not in columns
    finally:
        with _as("push", probes) as conn:
            conn.execute("delete from push_private.payloads where content_hash = 'roles-probe'")


def test_nobody_but_the_push_role_and_the_owner_holds_anything_in_push_private(probes: str) -> None:
    # From the catalogue, so a grant a later migration adds (to a role, to PUBLIC, by default privileges) fails here.
    with psycopg.connect(probes) as conn:
        grantees = {name for (name,) in conn.execute(
            "select distinct coalesce(pg_get_userbyid(nullif(acl.grantee, 0)), 'PUBLIC') from pg_namespace n,"
            " aclexplode(n.nspacl) acl where n.nspname = 'push_private'"
            " union select distinct coalesce(pg_get_userbyid(nullif(acl.grantee, 0)), 'PUBLIC')"
            " from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) acl"
            " where n.nspname = 'push_private'")}
        owners = {name for (name,) in conn.execute(
            "select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'push_private'"
            " union select pg_get_userbyid(c.relowner) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'push_private'")}
        defaults = conn.execute("select count(*) from pg_default_acl d join pg_namespace n"
                                " on n.oid = d.defaclnamespace where n.nspname = 'push_private'").fetchone()[0]
        # Who holds the push role's privileges: its login, and the owner (ADMIN on every role, acting as none).
        members = {name for (name,) in conn.execute(
            "select pg_get_userbyid(m.member) from pg_auth_members m join pg_roles r on r.oid = m.roleid"
            " where r.rolname = 'huiju_push' and (m.inherit_option or m.set_option)")}
    assert owners == {warehouse.OWNER_ROLE}
    assert grantees == {warehouse.OWNER_ROLE, warehouse.COMPONENT_ROLES["push"]}
    assert defaults == 0
    assert members == {warehouse.login_role("push")}


def test_only_the_admin_is_superuser_and_no_platform_role_holds_more(probes: str) -> None:
    with psycopg.connect(probes) as conn:
        admin = conn.execute("select current_user").fetchone()[0]
        powerful = dict(conn.execute(
            "select rolname, array_remove(array[case when rolsuper then 'super' end,"
            " case when rolcreaterole then 'createrole' end, case when rolcreatedb then 'createdb' end,"
            " case when rolbypassrls then 'bypassrls' end, case when rolreplication then 'replication' end], null)"
            " from pg_roles where (rolsuper or rolcreaterole or rolcreatedb or rolbypassrls or rolreplication)"
            " and rolname not like 'pg\\_%'").fetchall())
        logins = conn.execute("select rolname from pg_roles where rolname like 'huiju\\_%' and rolcanlogin"
                              " and rolname <> 'huiju_demo_frontdb' order by 1").fetchall()
    # The owner runs the migrations, which create and grant roles: CREATEROLE (over the roles it holds ADMIN on),
    # nothing more; the components' roles hold no attribute at all.
    assert powerful == {admin: ["super", "createrole", "createdb", "bypassrls", "replication"],
                        warehouse.OWNER_ROLE: ["createrole"]}
    assert sorted(name for (name,) in logins) == sorted(warehouse.platform_logins())


def test_public_holds_nothing_on_the_database_or_its_schemas(probes: str) -> None:
    with psycopg.connect(probes) as conn:
        database = conn.execute(
            "select count(*) from pg_database, aclexplode(datacl) acl"
            " where datname = current_database() and acl.grantee = 0").fetchone()[0]
        schemas = conn.execute(
            "select array_agg(distinct nspname) from pg_namespace, aclexplode(nspacl) acl where acl.grantee = 0"
            " and nspname not in ('pg_catalog', 'information_schema')").fetchone()[0]
        unowned = conn.execute("select count(*) from pg_namespace where nspacl is null and nspname in"
                               " ('raw', 'ops', 'quarantine', 'share', 'credit', 'public')").fetchone()[0]
    assert database == 0 and schemas is None
    assert unowned == 0  # a null ACL would mean the defaults, which grant PUBLIC usage on public


def test_a_table_a_later_migration_adds_to_ops_is_granted_without_an_edit(probes: str) -> None:
    with warehouse.connect(probes, role="owner") as conn:  # as a migration runs: the owner
        conn.execute("create table ops.roles_later (id bigserial primary key, note text)")
    try:
        for component in ("landing", "validation", "transformation"):
            with _as(component, probes) as conn:
                conn.execute("insert into ops.roles_later (note) values ('ok')")
        _denied("share", probes, "select * from ops.roles_later")
        with _as("dashboard", probes) as conn:
            conn.execute("select count(*) from ops.roles_later").fetchone()
    finally:
        with warehouse.connect(probes, role="owner") as conn:
            conn.execute("drop table ops.roles_later")


def test_the_owner_owns_the_warehouse_and_runs_migrations_but_is_no_superuser(probes: str) -> None:
    with warehouse.connect(probes, role="owner") as conn:
        owner, superuser, database_owner = conn.execute(
            "select current_user, current_setting('is_superuser'), pg_get_userbyid(datdba) from pg_database"
            " where datname = current_database()").fetchone()
        schemas = dict(conn.execute("select nspname, pg_get_userbyid(nspowner) from pg_namespace"
                                    " where nspname in ('ops', 'raw', 'quarantine', 'dbt_state', 'portal')"))
        by_superusers = conn.execute(
            "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " join pg_roles r on r.oid = c.relowner where r.rolsuper and n.nspname in"
            " ('ops', 'raw', 'quarantine', 'dbt_state', 'portal', 'staging', 'credit', 'share')").fetchone()[0]
    assert (owner, superuser, database_owner) == (warehouse.OWNER_ROLE, "off", warehouse.OWNER_ROLE)
    assert set(schemas.values()) == {warehouse.OWNER_ROLE} and by_superusers == 0
    warehouse.migrate(warehouse.role_url("owner", probes))  # the owner's own URL: no bootstrap, nothing to apply
    for statement in ("alter system set log_connections = on", "create database owned",
                      "create role intruder superuser", "alter role huiju_landing_login createdb",
                      "copy ops.loads to '/tmp/huiju-owner-probe'"):
        _denied("owner", probes, statement)  # what only a superuser (or CREATEDB) may do


def test_connecting_needs_a_role(probes: str) -> None:
    with pytest.raises(TypeError, match="role"):
        warehouse.connect(probes)  # no silent admin
    with pytest.raises(ValueError, match="unknown component"):
        warehouse.role_url("admin", probes)


def test_each_role_has_a_password_of_its_own(probes: str) -> None:
    from huiju import credentials

    secrets = {role: credentials.password(role) for role in warehouse.platform_logins()}
    assert len(set(secrets.values())) == len(secrets)
    for component in ("landing", "share"):  # another role's password does not open a role
        other = secrets[warehouse.login_role("validation")]
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(warehouse.with_credentials(probes, warehouse.login_role(component), other)).close()


def test_the_landing_cannot_drop_or_alter_what_is_not_its_own(probes: str) -> None:
    for statement in ("drop table ops.loads", "alter table ops.loads add column x text", "drop schema ops cascade",
                      "alter table quarantine.rows drop column reason", "drop schema credit cascade",
                      "drop table staging.roles_probe", "alter schema raw rename to landed",
                      "create schema mine", "create table ops.mine (x text)", "truncate ops.loads",
                      "set role huiju_transform", "alter role huiju_landing_login createdb",
                      "create role intruder"):
        _denied("landing", probes, statement)
    with _as("landing", probes) as conn:  # its own raw tables: it may change them (new columns from a new file)
        conn.execute("alter table raw.roles_probe add column if not exists note text")


def test_the_share_reader_cannot_select_from_raw_even_through_a_function(probes: str) -> None:
    for statement in ("select * from raw.roles_probe", "select ops.mask_text(id_number) from raw.roles_probe",
                      "copy raw.roles_probe to stdout", "select * from pg_catalog.pg_authid"):
        _denied("share", probes, statement)


@pytest.mark.skipif(bool(get_settings().warehouse_url), reason="an external server's authentication is its own")
def test_the_embedded_server_asks_everyone_for_a_password(pg_server_url: str) -> None:
    for user in ("postgres", warehouse.login_role("landing")):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(warehouse.with_credentials(pg_server_url, user, ""))
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(warehouse.with_credentials(pg_server_url, user, "not-the-password"))
    with psycopg.connect(pg_server_url) as conn:
        methods = {row[0] for row in conn.execute("select auth_method from pg_hba_file_rules")}
        encryption = conn.execute("show password_encryption").fetchone()[0]
    assert methods == {"scram-sha-256"} and encryption == "scram-sha-256"


def test_a_warehouse_the_admin_migrated_is_handed_to_the_owner(make_database) -> None:
    # A warehouse from before the owner role: every migration up to 160 run by the admin (a superuser).
    from importlib import resources

    url = make_database("handover")
    with psycopg.connect(url) as conn:
        conn.execute("create schema ops")
        conn.execute("create table ops.schema_migrations (name text primary key, applied_at timestamptz"
                     " not null default now())")
        for entry in sorted(resources.files("huiju.sql").iterdir(), key=lambda entry: entry.name):
            if entry.name.endswith(".sql") and entry.name < "161":
                conn.execute(entry.read_text(encoding="utf-8"))
                conn.execute("insert into ops.schema_migrations (name) values (%s)", (entry.name,))
    warehouse.migrate(url)  # the admin's URL: the bootstrap, then the owner's migrations
    with warehouse.connect(url, role="owner") as conn:
        owners = {owner for (owner,) in conn.execute(
            "select distinct pg_get_userbyid(c.relowner) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname in ('ops', 'quarantine', 'portal', 'dbt_state')")}
        functions = {owner for (owner,) in conn.execute(
            "select distinct pg_get_userbyid(proowner) from pg_proc where pronamespace = 'ops'::regnamespace")}
        conn.execute("create table ops.handover_later (id bigserial primary key, note text)")  # a later migration
    assert owners == functions == {warehouse.OWNER_ROLE}
    with _as("landing", url) as conn:
        conn.execute("insert into ops.handover_later (note) values ('granted by the owner''s default privileges')")
    _denied("share", url, "select * from ops.handover_later")
