-- Issue 18: the workbooks of records a credit platform rejected (huiju.push.feedback writes one per target,
-- supplying batch and send-back, into var/outbox/<source>/ and tells the department), recorded so that the
-- department's portal history (报送记录) lists them beside its batches and serves them. Written by the
-- validation component (which sends the rejections back); read by the portal (it acts as validation).
create table if not exists ops.push_rejection_workbooks (
    workbook_id  bigserial primary key,
    target       text not null,
    target_title text not null,             -- the platform's name as the department reads it
    load_id      text not null references ops.loads (load_id),
    path         text not null,             -- relative to var/ (var/outbox/<source>/…), as ops.feedback.path
    rows         integer not null,           -- records rejected in it
    created_at   timestamptz not null default now(),
    unique (target, load_id, path)
);
create index if not exists push_rejection_workbooks_load on ops.push_rejection_workbooks (load_id);
