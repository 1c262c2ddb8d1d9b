-- The platform's own tables: load ledger (ops), quarantine, cursors.
create schema if not exists raw;
create schema if not exists quarantine;
create schema if not exists ops;

-- One row per batch the platform received: a file, a page, an extract.
-- load_id is deterministic (source + content hash), so a retry finds its own row.
create table ops.loads (
    load_id          text primary key,
    source_id        text not null,
    department       text not null,
    dataset          text not null,
    channel          text not null,
    reference        text not null,          -- the name the department gave it (file name, page, extract)
    sha256           text not null,
    bytes            bigint not null,
    archive_path     text,                   -- content-addressed copy of the original, relative to var/archive
    status           text not null
        check (status in ('received', 'validated', 'published', 'held', 'failed')),
    rows_received    integer,
    rows_accepted    integer,
    rows_quarantined integer,
    error            text,
    warnings         jsonb not null default '[]',
    data_date        date,                   -- the business day the batch belongs to (Asia/Shanghai)
    received_at      timestamptz not null default now(),
    landed_at        timestamptz,
    validated_at     timestamptz,
    published_at     timestamptz,
    land_seconds     double precision,
    validate_seconds double precision
);
create unique index loads_source_content on ops.loads (source_id, sha256);
create index loads_dataset_status on ops.loads (dataset, status);

-- The same content delivered again (same or another name): recorded, never loaded twice.
create table ops.repeats (
    source_id   text not null,
    reference   text not null,
    sha256      text not null,
    repeat_of   text not null references ops.loads (load_id),
    first_seen  timestamptz not null default now(),
    primary key (source_id, reference, sha256)
);

-- Incremental position per source (watermark, page, exchange state); advanced only in the
-- transaction that lands the rows it covers.
create table ops.cursors (
    source_id   text primary key,
    position    jsonb not null,
    load_id     text references ops.loads (load_id),
    updated_at  timestamptz not null default now()
);

-- Rows that broke a rule: one row per failing source row with every rule it broke.
create table quarantine.rows (
    load_id     text not null references ops.loads (load_id),
    row_no      integer not null,            -- the row number the department sees in its own file
    dataset     text not null,
    violations  jsonb not null,              -- [{"field", "header", "rule", "value", "reason"}], values masked
    reasons     text not null,               -- the same, as one Chinese sentence per rule, for people
    primary key (load_id, row_no)
);
