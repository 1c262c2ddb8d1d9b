"""Migration 120: a warehouse built under the old model names keeps what it holds under the new ones."""

from __future__ import annotations

from importlib import resources

import psycopg


def test_staging_tables_are_renamed_and_the_misnamed_views_dropped(make_database) -> None:
    url = make_database("renames", migrated=True)
    migration = resources.files("huiju.sql").joinpath("120_dbt_model_names.sql").read_text(encoding="utf-8")
    with psycopg.connect(url) as conn:
        # as dbt left them before the renames (the snapshot table: one never taken over yet)
        # (the layers' schemas exist: 160_roles.sql creates them for the transformation's role)
        conn.execute("create table staging.stg_raw__admin_penalty as select 'D1' as decision_no")
        conn.execute("create view credit.snap_credit_admin_penalty as select * from staging.stg_raw__admin_penalty")
        conn.execute("create table archive.snap_basic_legal_person (uscc text)")
        conn.execute("insert into dbt_state.test_watermark values ('stg_raw__admin_penalty', now())")
        conn.execute(migration)
        conn.execute(migration)  # nothing left to do the second time
        # a build under the old names after one under the new (two versions built one warehouse)
        conn.execute("insert into dbt_state.test_watermark values ('stg_raw__admin_penalty', now())")
        conn.execute(migration)
        relations = dict(conn.execute(
            "select n.nspname || '.' || c.relname, c.relkind"
            " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname in ('staging', 'credit', 'archive')").fetchall())
        staged = conn.execute("select decision_no from staging.stg_landing__admin_penalties").fetchall()
        watermarks = conn.execute("select model from dbt_state.test_watermark").fetchall()
    assert relations == {"staging.stg_landing__admin_penalties": "r", "archive.snap_basic_legal_person": "r"}
    assert staged == [("D1",)]
    assert watermarks == [("stg_landing__admin_penalties",)]
