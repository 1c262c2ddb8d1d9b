-- FTP/SFTP file drops: what the platform took from each server, and what it must tell departments.

-- Every remote file the platform took (landed, repeat, failed …), by the name, size and mtime the
-- server listed. Sources that leave processed files on the server skip what is already here,
-- so a rerun downloads nothing; a new version under the same name has another size or mtime.
create table ops.remote_files (
    source_id    text not null,
    remote_name  text not null,
    size         bigint not null default -1,     -- -1 when the server did not report a size
    mtime        timestamptz not null,
    sha256       text not null,                  -- of the file as delivered (the archive itself for a zip)
    archive_path text,                           -- content-addressed copy of what was delivered
    outcome      text not null,                  -- landed | repeat | already_landed | failed | mixed (archives)
    load_ids     text[] not null default '{}',   -- the batches it became (one per member of an archive)
    taken_at     timestamptz not null default now(),
    primary key (source_id, remote_name, size, mtime)
);

-- Problems on a drop the department has to hear about: an upload that never completed within the
-- grace period, a marker contradicting its file, unsafe or undecodable names, a marker without data.
-- One row per problem and version of the file; notified_at stays null until a notice went out
-- (the notifier — email / DingTalk — reads the null rows; until it exists the row is the notice).
create table ops.remote_file_events (
    event_id     bigserial primary key,
    source_id    text not null,
    department   text not null,
    remote_name  text not null,
    kind         text not null
        check (kind in ('stale_incomplete', 'marker_mismatch', 'unsafe_name', 'undecodable_name', 'orphan_marker')),
    detail       text not null,                  -- technical detail for stewards
    notice       text not null,                  -- the sentence for the department, in Chinese
    remote_size  bigint not null default -1,
    remote_mtime timestamptz not null default 'epoch',
    first_seen   timestamptz not null default now(),
    last_seen    timestamptz not null default now(),
    notified_at  timestamptz,
    unique (source_id, remote_name, kind, remote_size, remote_mtime)
);
create index remote_file_events_pending on ops.remote_file_events (department) where notified_at is null;
