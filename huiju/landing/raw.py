"""The raw tables: ``raw.<dataset>``, every field text as received, plus the columns that say where a row came from.

``_load_id``, ``_row_no`` and ``_source_ref`` default to transaction-local settings, so a bulk
``COPY`` of a file into the table passes no row through Python (see
:class:`huiju.landing.files._Batch`); ``_loaded_at`` is the landing's time and ``_extra`` holds,
as JSON, whatever a department sent beyond the mapped fields.

Readers find a batch's rows, or one row of it, through a BRIN index on ``(_load_id, _row_no)``
(a bloom filter of the load ids and the range of row numbers of every 32 pages), not a btree: a
batch lands as one contiguous run of pages with its rows numbered in order, so a summary per
range is as selective as a btree for every reader (a batch, ``= any`` of the day's batches, a
quarantined row by load and row number), while a btree cost the landing an index entry per
row — a fifth of a million-row ``COPY``. The landing summarises the ranges it filled in its own
transaction (:func:`summarise_landed`): BRIN reads an unsummarised range for every query.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from huiju.registry import Dataset

#: The group role that owns every raw table (huiju/sql/160_roles.sql; huiju.warehouse.COMPONENT_ROLES["landing"]).
RAW_OWNER = "huiju_landing"

# Rows are numbered by a per-transaction temporary sequence, named by OID in a setting (see files._Batch).
ROW_NO_DEFAULT = "nextval(current_setting('huiju.row_seq')::oid::regclass)"

_RAW_READY: set[tuple[str, str, tuple[str, ...]]] = set()

#: The readers' way in: bloom over load ids, min/max of row numbers, per 32 pages (huiju/sql/270_raw_brin.sql).
LOAD_INDEX_SUFFIX = "_load_brin"
LOAD_INDEX_METHOD = ("using brin (_load_id text_bloom_ops, _row_no int4_minmax_ops)"
                     " with (pages_per_range = 32)")


def load_index(dataset: str) -> str:
    """The name of ``raw.<dataset>``'s index by load and row number."""
    return f"{dataset}{LOAD_INDEX_SUFFIX}"


def summarise_landed(conn: psycopg.Connection, dataset: str) -> None:
    """Summarise the page ranges rows were just copied into (call in the landing's transaction).

    Until then the ranges match every query; summarising reads only them. It takes the table's
    SHARE UPDATE EXCLUSIVE lock to the end of the transaction: two landings into one table
    serialise their last step, readers are not held.
    """
    conn.execute("select brin_summarize_new_values(%s::regclass)", (f"raw.{load_index(dataset)}",))


def ensure_raw_table(conn: psycopg.Connection, dataset: Dataset) -> None:
    """Create ``raw.<dataset>`` (or add newly declared fields) — all fields are text, as received."""
    key = (conn.info.dsn, dataset.dataset, dataset.field_names)
    if key in _RAW_READY:
        return
    table = sql.Identifier("raw", dataset.dataset)
    # DDL only for what is missing, found in the catalog (which takes no lock on the table): even
    # `add column if not exists` takes an exclusive lock, which queues behind any open reader of
    # the table and blocks every reader after it — with sources landing and validating side by
    # side, a no-op ALTER could stall them all behind a transaction left open by a validator.
    present = {row[0] for row in conn.execute(
        "select column_name from information_schema.columns where table_schema = 'raw' and table_name = %s",
        (dataset.dataset,))}
    # The landing's group role owns raw tables, whichever login creates them (the landing's, the portal's, an
    # admin's in tests): each of them can then alter it, and the grants of 160_roles.sql apply to it.
    # In a transaction of its own (or a savepoint), so the role holds for the DDL on an autocommit connection too.
    with conn.transaction():
        conn.execute("select set_config('role', %s, true) where pg_has_role(session_user, %s, 'member')",
                     (RAW_OWNER, RAW_OWNER))
        if not present:
            conn.execute(sql.SQL(
                "create table if not exists {table} ("
                " _load_id text not null default current_setting('huiju.load_id'),"
                f" _row_no integer not null default {ROW_NO_DEFAULT},"
                " _source_ref text not null default current_setting('huiju.source_ref'),"
                " _loaded_at timestamptz not null default now(),"
                " _extra jsonb)"
            ).format(table=table))
        for name in dataset.field_names:
            if name not in present:
                conn.execute(sql.SQL("alter table {table} add column if not exists {column} text").format(
                    table=table, column=sql.Identifier(name)))
        else:
            default = conn.execute(
                "select pg_get_expr(d.adbin, d.adrelid) from pg_attrdef d join pg_attribute a"
                " on a.attrelid = d.adrelid and a.attnum = d.adnum"
                " where d.adrelid = %s::regclass and a.attname = '_row_no'",
                (f"raw.{dataset.dataset}",)).fetchone()
            if default and "::oid" not in default[0]:  # a table made before row numbers took the sequence's OID
                conn.execute(sql.SQL("alter table {table} alter column _row_no set default " + ROW_NO_DEFAULT).format(
                    table=table))
        index = load_index(dataset.dataset)
        if not conn.execute("select 1 from pg_indexes where schemaname = 'raw' and indexname = %s",
                            (index,)).fetchone():
            conn.execute(sql.SQL("create index if not exists {index} on {table} " + LOAD_INDEX_METHOD).format(
                index=sql.Identifier(index), table=table))
    conn.commit()
    _RAW_READY.add(key)
