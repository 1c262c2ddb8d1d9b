-- Front-end database (前置库) sources: the schema seen last time, snapshot keys, deletions.

-- The source table's columns and types as last read, to report a type change (schema drift).
create table if not exists ops.frontdb_schemas (
    source_id   text primary key,
    columns     jsonb not null,              -- {"column": "TYPE", ...}
    seen_at     timestamptz not null default now()
);

-- Snapshot mode: the keys present in the last complete snapshot of a source.
create table if not exists ops.snapshot_keys (
    source_id   text not null,
    key         jsonb not null,              -- the key columns' values, as a JSON array
    primary key (source_id, key)
);

-- Keys seen so far by the snapshot being read (cleared when a snapshot starts; a scratch table,
-- so unlogged: a crash mid-snapshot simply restarts the snapshot).
create unlogged table if not exists ops.snapshot_seen (
    source_id   text not null,
    key         jsonb not null,
    primary key (source_id, key)
);

-- Rows deleted at the source: present in one snapshot, gone in the next. Kept here rather than as
-- marker rows in raw, because raw holds only what a department sent.
create table if not exists ops.deletions (
    source_id   text not null,
    key         jsonb not null,
    data_date   date,
    detected_at timestamptz not null default now(),
    primary key (source_id, key, detected_at)
);
