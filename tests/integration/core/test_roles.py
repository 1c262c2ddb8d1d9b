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


def test_only_the_admin_is_superuser_and_no_component_role_holds_more(probes: str) -> None:
    with psycopg.connect(probes) as conn:
        admin = conn.execute("select current_user").fetchone()[0]
        powerful = conn.execute(
            "select rolname from pg_roles where (rolsuper or rolcreaterole or rolcreatedb or rolbypassrls"
            " or rolreplication) and rolname not like 'pg\\_%'").fetchall()
        logins = conn.execute("select rolname from pg_roles where rolname like 'huiju\\_%' and rolcanlogin"
                              " order by 1").fetchall()
    assert [name for (name,) in powerful] == [admin]
    assert sorted(name for (name,) in logins) == sorted(warehouse.login_role(c) for c in warehouse.COMPONENT_ROLES)


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
    with psycopg.connect(probes) as conn:  # as a migration runs: the admin
        conn.execute("create table ops.roles_later (id bigserial primary key, note text)")
    try:
        for component in ("landing", "validation", "transformation"):
            with _as(component, probes) as conn:
                conn.execute("insert into ops.roles_later (note) values ('ok')")
        _denied("share", probes, "select * from ops.roles_later")
        with _as("dashboard", probes) as conn:
            conn.execute("select count(*) from ops.roles_later").fetchone()
    finally:
        with psycopg.connect(probes) as conn:
            conn.execute("drop table ops.roles_later")


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
