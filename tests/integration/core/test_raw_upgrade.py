"""Issue 23: a raw table landed before the BRIN index is upgraded in place and still answers every reader.

Before, ``raw.<dataset>`` had a btree on ``_load_id``; now a BRIN index on ``(_load_id, _row_no)``
(huiju/sql/270_raw_brin.sql). A warehouse with batches in the old shape is migrated: no row is
rewritten, the btree goes, and validation (the quarantine statement and GX), the feedback
workbook, the resubmission link, the published-key check and staging's read of the day's
batches answer as before — through the new index.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from huiju_demo.bulk import write_penalty_csv

from huiju import warehouse
from huiju.feedback import build_feedback
from huiju.landing import land_file
from huiju.landing.raw import load_index
from huiju.registry import Registry, load_registry
from huiju.validation import publish_load, validate_load

MIGRATION = "270_raw_brin.sql"


@pytest.fixture
def registry() -> Registry:
    return load_registry()


def _land(conn: psycopg.Connection, registry: Registry, source_id: str, path: Path) -> str:
    result = land_file(conn, registry, registry.source(source_id), path)
    assert result.outcome == "landed", result
    return result.load_id


def _indexes(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute("select indexname, indexdef from pg_indexes where schemaname = 'raw'"
                             " and tablename = 'admin_penalty'").fetchall())


def test_a_raw_table_of_the_old_shape_is_upgraded_and_answers_every_reader(
        make_database, registry: Registry, tmp_path: Path, scratch_var: Path) -> None:
    url = make_database("upgrade")
    warehouse.migrate(url)
    source = registry.source("scjgj_penalty")
    h = {field: header for header, field in source.columns.items()}
    with psycopg.connect(url) as conn:
        published = _land(conn, registry, source.id, write_penalty_csv(tmp_path / "pub.csv", source, 30, tag="UP"))
        assert validate_load(conn, registry, published, run_gx=False).status == "validated"
        assert publish_load(conn, published)
        held = _land(conn, registry, source.id, write_penalty_csv(
            tmp_path / "held.csv", source, 20, tag="UH", overrides={i: {h["party_name"]: ""} for i in range(6)}))
        # Back to the shape every raw table had before issue 23: the btree on _load_id, no BRIN index.
        conn.execute(f"drop index raw.{load_index('admin_penalty')}")
        conn.execute("create index admin_penalty_load_id on raw.admin_penalty (_load_id)")
        conn.execute("delete from ops.schema_migrations where name = %s", (MIGRATION,))
        conn.commit()
        before = conn.execute("select ctid::text, _load_id, _row_no from raw.admin_penalty order by 1").fetchall()

    warehouse._MIGRATED.clear()  # the admin's URL and the owner's it bootstraps to: migrate again, for real
    warehouse.migrate(url)

    with psycopg.connect(url) as conn:
        indexes = _indexes(conn)
        assert list(indexes) == [load_index("admin_penalty")]
        assert "USING brin (_load_id text_bloom_ops, _row_no)" in indexes[load_index("admin_penalty")]
        # Upgraded in place: the same rows where they were.
        assert conn.execute("select ctid::text, _load_id, _row_no from raw.admin_penalty order by 1").fetchall() \
            == before
        # Validation (quarantine statement and GX) and the feedback workbook of the batch landed before.
        result = validate_load(conn, registry, held)
        assert (result.status, result.rows_quarantined) == ("held", 6)
        feedback = build_feedback(conn, registry, held)
        assert feedback is not None
        # A correction landed after the upgrade is linked to it (quarantined rows looked up by load and row).
        corrected = _land(conn, registry, source.id, write_penalty_csv(tmp_path / "held_更正.csv", source, 20,
                                                                        tag="UH"))
        assert validate_load(conn, registry, corrected, run_gx=False).status == "validated"
        assert conn.execute("select resubmission_of from ops.loads where load_id = %s",
                            (corrected,)).fetchone()[0] == held
        # The published-key check still sees the batch published before the upgrade.
        again = _land(conn, registry, "swj_penalty", write_penalty_csv(
            tmp_path / "swj.csv", registry.source("swj_penalty"), 30, tag="UP", encoding="utf-8"))
        assert validate_load(conn, registry, again, run_gx=False).rows_quarantined == 30
        # Staging's read of the day's batches (dbt_project/macros/staging.sql) goes through the index.
        conn.execute("set local enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.execute(
            "explain select r.* from raw.admin_penalty r where r._load_id = any(%s::text[]) and not exists"
            " (select 1 from quarantine.rows q where q.load_id = r._load_id and q.row_no = r._row_no)",
            ([published, corrected],)))
        assert f"Bitmap Index Scan on {load_index('admin_penalty')}" in plan
        assert conn.execute("select count(*) from raw.admin_penalty where _load_id = any(%s)",
                            ([published, corrected],)).fetchone()[0] == 50
