-- Notices to departments and stewards (issue 6): one outbox for the whole platform.
--
-- A producer (a held batch, a feedback workbook, a problem on an FTP/SFTP drop, …) queues a
-- notice in the same transaction as the fact it announces; its dedupe_key makes the same
-- problem announced once however often the producer runs. Each notice fans out into one
-- delivery per channel and recipient; a deliverer sends the pending ones and records the
-- outcome. A delivery with delivered_at set is never sent again.

create table if not exists ops.notices (
    notice_id    bigserial primary key,
    dedupe_key   text not null unique,        -- e.g. held:<load_id>, feedback:<load_id>, remote_file:<event_id>
    kind         text not null,               -- held | feedback | remote_file | …
    department   text,                        -- the department it is about (null: stewards only)
    source_id    text,
    load_id      text references ops.loads (load_id),
    subject      text not null,               -- Chinese, ID and mobile numbers masked
    body         text not null,               -- Chinese plain text, masked the same way
    attachment   text,                        -- a file to attach, relative to var/ (feedback workbook)
    created_at   timestamptz not null default now()
);
create index if not exists notices_department on ops.notices (department, created_at);

create table if not exists ops.notice_deliveries (
    notice_id       bigint not null references ops.notices (notice_id),
    channel         text not null,            -- email | dingtalk
    recipient       text not null,            -- an e-mail address, or the Airflow Connection of a DingTalk robot
    attempts        integer not null default 0,
    last_error      text,                     -- masked
    last_attempt_at timestamptz,
    next_attempt_at timestamptz not null default now(),
    delivered_at    timestamptz,
    primary key (notice_id, channel, recipient)
);
create index if not exists notice_deliveries_pending on ops.notice_deliveries (next_attempt_at)
    where delivered_at is null;
