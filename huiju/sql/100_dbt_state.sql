-- What dbt keeps between builds outside the layers it rebuilds (dbt_project/macros/incremental.sql,
-- macros/history.sql). Created here rather than by dbt, so every dbt statement — a data test
-- compiled before staging ever ran included — can read them without first asking whether they exist.
create schema if not exists dbt_state;

-- The newest publication time staging held before the current build: data tests check what is newer.
create table if not exists dbt_state.test_watermark (
    model text primary key,
    published_after timestamptz not null
);

-- How far a history model has examined the published data (the newest publication time it has
-- compared), whether or not that build found a change to record.
create table if not exists dbt_state.history_watermark (
    model text primary key,
    published_through timestamptz not null
);
