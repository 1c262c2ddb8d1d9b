-- Withdrawals (撤回): records a department deleted at the source (snapshot mode finds them gone:
-- ops.deletions) as the warehouse sees them — every raw row of such a record landed before the
-- deletion was found. Staging leaves them out and deletes them, the credit records lose the record
-- whose latest version was withdrawn, and the share views follow (dbt: macros/withdrawals.sql);
-- share.share_withdrawals tells the push targets which published records to take back.
-- A record sent again later lands as a new row, not withdrawn.
create table if not exists ops.withdrawals (
    load_id      text not null references ops.loads (load_id),
    row_no       integer not null,
    source_id    text not null,
    dataset      text not null,
    natural_key  jsonb not null,             -- the dataset's natural key as received: {"decision_no": "…"}
    source_key   jsonb not null,             -- the key at the source, as in ops.deletions
    withdrawn_at timestamptz not null default now(),
    primary key (load_id, row_no)
);
create index if not exists withdrawals_dataset_time on ops.withdrawals (dataset, withdrawn_at);
