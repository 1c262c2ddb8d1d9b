-- Issue 18: pushing credit data to the city public credit platform and the province (huiju.push).
--
-- ops.push_records  what each target holds (or is due) per record: the content hash of the payload it
--                   was last sent, and whether the record is withdrawn there. The outbox is computed
--                   against it (new, changed, withdrawn).
-- ops.push_outbox   one row per record due at a target (upsert or withdraw), its payload exactly as
--                   the target receives it, the batch it went in and its receipt's outcome.
-- ops.push_batches  one row per request: a deterministic batch id per target and batch number, the
--                   idempotency key derived from it, and where it stands (pending → sending → done).
-- ops.push_receipts every receipt the platform gave, per record (accepted / rejected with its reason /
--                   unknown), from the submit answer or from a status query by batch id.
-- ops.push_cursors  per target and relation, the latest published_at already compared (incremental outbox).
--
-- The push component connects as huiju_push (huiju.warehouse.COMPONENT_ROLES): it reads the credit
-- layer (a credit platform is entitled to identifiers in clear; huiju.push masks what a target is not)
-- and writes these tables; nothing in raw, staging or quarantine.

create table if not exists ops.push_records (
    target        text not null,
    record_key    text not null,            -- <item set>:<natural key>, the record id on the wire
    relation      text not null,
    natural_key   text not null,
    content_hash  text not null,            -- sha256 of the payload last queued for the target
    withdrawn     boolean not null default false,
    publish_until date,
    updated_at    timestamptz not null default now(),
    primary key (target, record_key)
);
create index if not exists push_records_open_until on ops.push_records (target, relation, publish_until)
    where not withdrawn;

create table if not exists ops.push_outbox (
    outbox_id      bigserial primary key,
    target         text not null,
    record_key     text not null,
    relation       text not null,
    action         text not null check (action in ('upsert', 'withdraw')),
    payload        jsonb not null,
    content_hash   text not null,
    department     text,                    -- the supplying department (rejections go back to it)
    load_id        text,
    source_row_no  integer,
    decision_date  date,
    deadline_date  date,                    -- 双公示: public within 7 working days of the decision
    queued_at      timestamptz not null default now(),
    batch_id       text,
    state          text not null default 'due'
        check (state in ('due', 'batched', 'accepted', 'rejected', 'unknown', 'refused', 'superseded')),
    reason         text,
    settled_at     timestamptz,
    late_alerted   boolean not null default false,
    fed_back_at    timestamptz             -- a rejection sent back to the department (问题数据反馈)
);
create index if not exists push_outbox_record on ops.push_outbox (target, record_key);
create index if not exists push_outbox_due on ops.push_outbox (target, outbox_id) where state = 'due';
create index if not exists push_outbox_batch on ops.push_outbox (batch_id);
create index if not exists push_outbox_open on ops.push_outbox (target, deadline_date)
    where state in ('due', 'batched', 'unknown');

create table if not exists ops.push_batches (
    batch_id         text primary key,      -- <target>-<batch_no>, ".1"/".2" for the halves of a split
    target           text not null,
    batch_no         bigint not null,       -- the order batches are sent in (an outage drains in order)
    parent_batch_id  text references ops.push_batches (batch_id),
    idempotency_key  text not null unique,
    records          integer not null,
    state            text not null default 'pending'
        check (state in ('pending', 'sending', 'done', 'split', 'refused')),
    attempts         integer not null default 0,
    last_error       text,
    created_at       timestamptz not null default now(),
    sent_at          timestamptz,
    done_at          timestamptz
);
create index if not exists push_batches_open on ops.push_batches (target, batch_no, batch_id)
    where state in ('pending', 'sending');

create table if not exists ops.push_receipts (
    receipt_id   bigserial primary key,
    batch_id     text not null references ops.push_batches (batch_id),
    outbox_id    bigint not null references ops.push_outbox (outbox_id),
    target       text not null,
    record_key   text not null,
    outcome      text not null check (outcome in ('accepted', 'rejected', 'unknown')),
    reason       text,
    via          text not null check (via in ('submit', 'status')),
    recorded_at  timestamptz not null default now()
);
create index if not exists push_receipts_outbox on ops.push_receipts (outbox_id);

create table if not exists ops.push_cursors (
    target     text not null,
    relation   text not null,
    watermark  timestamptz,
    primary key (target, relation)
);

-- The push component's group role and its login, as migration 160 makes the others'.
do $$
declare
    spec text[];
begin
    foreach spec slice 1 in array array[['huiju_push', 'nologin'], ['huiju_push_login', 'login']] loop
        if not exists (select from pg_roles where rolname = spec[1]) then
            begin
                execute format('create role %I %s', spec[1], spec[2]);
            exception when duplicate_object or unique_violation then null;  -- another database's migration
            end;
        end if;
    end loop;
    grant huiju_push to huiju_push_login;
    alter role huiju_push_login set role huiju_push;
    execute format('grant connect, temporary on database %I to huiju_push', current_database());
end
$$;

grant usage on schema ops to huiju_push;
grant select, insert, update, delete on ops.push_records, ops.push_outbox, ops.push_batches, ops.push_receipts,
    ops.push_cursors to huiju_push;
grant select on ops.work_calendar, ops.loads to huiju_push;
grant usage, select, update on all sequences in schema ops to huiju_push;
grant execute on function ops.add_working_days(date, integer) to huiju_push;

-- The credit layer: dbt (huiju_transform) rebuilds its relations, so the grant is a default privilege.
grant usage on schema credit, share to huiju_push;
grant select on all tables in schema credit, share to huiju_push;
alter default privileges for role huiju_transform in schema credit, share grant select on tables to huiju_push;
