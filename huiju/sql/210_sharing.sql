-- Issue 20: 共享交换 — sharing requests, their decisions, the grants that provision them, and an append-only
-- audit trail chained by hash (huiju.sharing).
--
-- Schema sharing, owned by the owner and granted table by table — not ops, whose default privileges give
-- every table to landing, validation and transformation with update and delete: the audit trail must be
-- insert-only for everyone who may write it. Schema granted holds one view per grant, readable only by that
-- grant's own login role (created by sharing.provision_grant, dropped by sharing.revoke_grant).
--
-- The sharing component connects as huiju_sharing (huiju.warehouse.COMPONENT_ROLES): it reads the share
-- layer (to check a row scope matches rows), writes requests and grants, appends to the audit trail, and
-- provisions or revokes grants only through the two functions below, which run as the owner (CREATEROLE).
do $$
begin
    if not exists (select from pg_roles where rolname = 'huiju_sharing') then
        begin
            create role huiju_sharing nologin;
        exception when duplicate_object or unique_violation then null;  -- another database's migration
        end;
    end if;
    if not exists (select from pg_roles where rolname = 'huiju_sharing_login') then
        begin
            create role huiju_sharing_login login;
        exception when duplicate_object or unique_violation then null;
        end;
    end if;
    execute format('grant connect on database %I to huiju_sharing', current_database());
end
$$;
grant huiju_sharing to huiju_sharing_login;
alter role huiju_sharing_login set role huiju_sharing;
-- The share layer, as a consumer sees it (the row-scope check reads it).
grant huiju_share_reader to huiju_sharing;

create schema if not exists sharing;
create schema if not exists granted;
revoke all on schema sharing, granted from public;

-- A department's request for a catalogued resource (config/sharing/catalogue/<resource>.yaml).
create table if not exists sharing.requests (
    request_id           bigserial primary key,
    resource_id          text not null,
    relation             text not null,                   -- share.<model>, as catalogued when filed
    share_type           text not null check (share_type in ('unconditional', 'conditional', 'not_shared')),
    requester_department text not null,
    requested_by         text not null,                   -- the portal account (or the CLI's user)
    purpose              text not null check (length(purpose) >= 4),
    fields               text[] not null check (cardinality(fields) > 0),
    row_scope            jsonb not null default '{}',     -- {column: [values]}: only rows matching every column
    duration_days        integer not null check (duration_days between 1 and 3660),
    -- checking: the bureau's check (无条件共享 where configured); pending: the owning department's approval;
    -- approved → a grant; refused, and a grant's end (revoked, expired) ends the request too.
    status               text not null check (status in ('checking', 'pending', 'approved', 'refused', 'revoked',
                                                         'expired')),
    deciding_department  text,                            -- whose 审批人 decide (conditional)
    filed_at             timestamptz not null default now(),
    due_on               date,                            -- the current step's deadline (working days)
    decided_at           timestamptz,
    decided_by           text,
    decided_as           text check (decided_as in ('auto', 'bureau_check', 'department', 'bureau', 'policy')),
    reason               text,                            -- a refusal's reason, or the basis of 不予共享
    document_sha256      text check (document_sha256 ~ '^[0-9a-f]{64}$'),
    document_ref         text,                            -- the approval document in the archive
    document_name        text,
    idempotency_key      text unique,
    check ((status in ('refused') and reason is not null) or status <> 'refused'),
    check ((decided_as = 'bureau') = (document_sha256 is not null))
);
create index if not exists requests_department on sharing.requests (requester_department, filed_at);
create index if not exists requests_deciding on sharing.requests (deciding_department, status);

-- The grant that provisions an approved request: a login role of the requester's, a view limited to the
-- approved fields and rows, an API token (its sha256 only), and when it ends.
create table if not exists sharing.grants (
    grant_id        bigserial primary key,
    request_id      bigint not null unique references sharing.requests (request_id),
    role_name       text not null unique check (role_name ~ '^share_grant_[0-9]+_[0-9a-f]{8}$'),
    view_name       text not null unique check (view_name ~ '^grant_[0-9]+$'),
    relation        text not null check (relation ~ '^share\.[a-z_][a-z0-9_]*$'),
    fields          text[] not null check (cardinality(fields) > 0),
    row_scope       jsonb not null default '{}',
    token_sha256    text unique,
    granted_at      timestamptz not null default now(),
    expires_at      timestamptz not null,
    provisioned_at  timestamptz,
    ended_at        timestamptz,
    ended_as        text check (ended_as in ('revoked', 'expired')),
    ended_by        text,
    end_reason      text
);

-- The audit trail (审计日志): every step of every request and every access through a grant. Append-only
-- (triggers refuse update, delete and truncate; the sharing role holds insert and select only), and each
-- row chained to the one before: row_hash = sha256(prev_hash || sharing.audit_content(row)), computed by the
-- insert trigger under a lock. huiju.sharing.audit.verify_chain finds a row deleted (a gap, or a link that
-- no longer matches) or altered (a hash that no longer matches its content), and a cut-off tail (the head).
create table if not exists sharing.audit (
    seq         bigint primary key,
    at          timestamptz not null default clock_timestamp(),
    kind        text not null,
    actor       text not null,
    request_id  bigint,
    grant_id    bigint,
    detail      jsonb not null default '{}',
    prev_hash   text not null,
    row_hash    text not null
);
create index if not exists audit_request on sharing.audit (request_id);
create index if not exists audit_grant on sharing.audit (grant_id);

-- The chain's head: the last row's seq and hash, so a deleted tail is seen too.
create table if not exists sharing.audit_head (
    only_row   boolean primary key default true check (only_row),
    seq        bigint not null,
    row_hash   text not null
);

-- What a row's hash covers: every column but the hashes, in a text form that does not depend on the session
-- (UTC time, jsonb's own canonical text).
create or replace function sharing.audit_content(seq bigint, at timestamptz, kind text, actor text,
                                                  request_id bigint, grant_id bigint, detail jsonb)
returns text language sql immutable parallel safe as $$
    select concat_ws('|', seq::text, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), kind, actor,
                     coalesce(request_id::text, ''), coalesce(grant_id::text, ''), detail::text)
$$;

create or replace function sharing.audit_chain() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
    head_seq bigint;
    head_hash text;
begin
    perform pg_advisory_xact_lock(hashtext('huiju.sharing.audit'));
    select seq, row_hash into head_seq, head_hash from sharing.audit_head for update;
    if not found then
        head_seq := 0;
        head_hash := repeat('0', 64);
        insert into sharing.audit_head (seq, row_hash) values (0, head_hash);
    end if;
    new.seq := head_seq + 1;
    new.at := coalesce(new.at, clock_timestamp());
    new.prev_hash := head_hash;
    new.row_hash := encode(sha256(convert_to(head_hash || sharing.audit_content(
        new.seq, new.at, new.kind, new.actor, new.request_id, new.grant_id, new.detail), 'UTF8')), 'hex');
    update sharing.audit_head set seq = new.seq, row_hash = new.row_hash;
    return new;
end
$$;

create or replace function sharing.audit_is_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'sharing.audit is append-only: % refused', tg_op using errcode = '42501';
end
$$;

drop trigger if exists audit_chain on sharing.audit;
create trigger audit_chain before insert on sharing.audit for each row execute function sharing.audit_chain();
drop trigger if exists audit_append_only on sharing.audit;
create trigger audit_append_only before update or delete on sharing.audit
    for each row execute function sharing.audit_is_append_only();
drop trigger if exists audit_no_truncate on sharing.audit;
create trigger audit_no_truncate before truncate on sharing.audit
    for each statement execute function sharing.audit_is_append_only();

-- Provision an approved grant: its login role (password given as a SCRAM verifier, valid until the grant
-- ends), a function that checks the grant is live, records the read in the audit trail and returns the
-- approved columns of the approved rows, and the view over it; both readable by that role only. The
-- function reads the relation by name at each call (dynamic SQL), so dbt rebuilding the share view never
-- drops the grant with it.
create or replace function sharing.provision_grant(p_grant_id bigint, p_verifier text) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp
set createrole_self_grant = 'set, inherit' as $fn$
declare
    g record;
    source regclass;
    column_defs text;
    column_list text;
    scope_sql text := 'true';
    scope record;
    body text;
begin
    select * into g from sharing.grants where grant_id = p_grant_id for update;
    if not found or g.ended_at is not null then
        raise exception 'grant % does not exist or has ended', p_grant_id;
    end if;
    if not exists (select from sharing.requests where request_id = g.request_id and status = 'approved') then
        raise exception 'grant %: its request % is not approved', p_grant_id, g.request_id;
    end if;
    source := to_regclass(format('share.%I', split_part(g.relation, '.', 2)));
    if source is null then
        raise exception 'grant %: relation % does not exist', p_grant_id, g.relation;
    end if;
    select string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' order by f.ord),
           string_agg(format('r.%I', a.attname), ', ' order by f.ord)
      into column_defs, column_list
      from unnest(g.fields) with ordinality as f (name, ord)
      join pg_attribute a on a.attrelid = source and a.attname = f.name and a.attnum > 0 and not a.attisdropped;
    if column_list is null or (select count(*) from pg_attribute a where a.attrelid = source and a.attnum > 0
                               and not a.attisdropped and a.attname = any(g.fields)) <> cardinality(g.fields) then
        raise exception 'grant %: fields % are not all columns of %', p_grant_id, g.fields, g.relation;
    end if;
    for scope in select key, value from jsonb_each(g.row_scope) loop
        if not exists (select from pg_attribute a where a.attrelid = source and a.attname = scope.key
                       and a.attnum > 0 and not a.attisdropped) then
            raise exception 'grant %: row scope column % is not a column of %', p_grant_id, scope.key, g.relation;
        end if;
        scope_sql := scope_sql || format(' and r.%I::text = any(%L::text[])', scope.key,
                                         array(select jsonb_array_elements_text(scope.value)));
    end loop;
    execute format('create role %I login password %L valid until %L connection limit 4', g.role_name, p_verifier,
                   g.expires_at);
    execute format('grant connect on database %I to %I', current_database(), g.role_name);
    execute format('grant usage on schema granted to %I', g.role_name);
    -- Read by the grant's role (the view: every row) or by the data service API as the sharing component (a
    -- page); either way one audit row per call, saying which.
    body := format($body$
        #variable_conflict use_column
        begin
            if not exists (select from sharing.grants where grant_id = %1$s and ended_at is null
                           and expires_at > now()) then
                raise exception using errcode = '42501', message = '共享授权已撤销或已到期（grant %1$s）';
            end if;
            insert into sharing.audit (kind, actor, request_id, grant_id, detail)
                values (case when session_user = %6$L then 'db_read' else 'api_read' end, session_user, %2$s, %1$s,
                        jsonb_build_object('offset', p_offset, 'limit', p_limit));
            return query select %3$s from %4$s r where %5$s order by %7$s offset p_offset limit p_limit;
        end
    $body$, g.grant_id, g.request_id, column_list, source, scope_sql, g.role_name,
        (select string_agg(n::text, ', ') from generate_series(1, cardinality(g.fields)) n));
    execute format('create function granted.%I(p_offset bigint default 0, p_limit bigint default null)'
                   ' returns table (%s) language plpgsql volatile security definer'
                   ' set search_path = pg_catalog, pg_temp as %L', g.view_name || '_rows', column_defs, body);
    execute format('revoke all on function granted.%I(bigint, bigint) from public', g.view_name || '_rows');
    execute format('grant execute on function granted.%I(bigint, bigint) to %I, huiju_sharing',
                   g.view_name || '_rows', g.role_name);
    execute format('create view granted.%I as select * from granted.%I()', g.view_name, g.view_name || '_rows');
    execute format('grant select on granted.%I to %I', g.view_name, g.role_name);
    update sharing.grants set provisioned_at = now() where grant_id = p_grant_id;
end
$fn$;

-- End a grant (revoked or expired): the view, its function and the login role go, and the role's open
-- sessions are ended, at once.
create or replace function sharing.end_grant(p_grant_id bigint, p_as text, p_by text, p_reason text)
returns void language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
    g record;
begin
    if p_as not in ('revoked', 'expired') then
        raise exception 'a grant ends revoked or expired, not %', p_as;
    end if;
    select * into g from sharing.grants where grant_id = p_grant_id for update;
    if not found then
        raise exception 'grant % does not exist', p_grant_id;
    end if;
    if g.ended_at is null then
        update sharing.grants set ended_at = now(), ended_as = p_as, ended_by = p_by, end_reason = p_reason,
                                  token_sha256 = null
            where grant_id = p_grant_id;
        update sharing.requests set status = p_as where request_id = g.request_id;
    end if;
    execute format('drop view if exists granted.%I', g.view_name);
    execute format('drop function if exists granted.%I(bigint, bigint)', g.view_name || '_rows');
    if exists (select from pg_roles where rolname = g.role_name) then
        perform pg_terminate_backend(pid) from pg_stat_activity where usename = g.role_name;
        execute format('revoke all on schema granted from %I', g.role_name);
        execute format('revoke all on database %I from %I', current_database(), g.role_name);
        execute format('drop role %I', g.role_name);
    end if;
end
$fn$;

-- New credentials for a live grant's role (the requester asks for them in the portal; shown once).
create or replace function sharing.set_grant_password(p_grant_id bigint, p_verifier text) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
    g record;
begin
    select * into g from sharing.grants where grant_id = p_grant_id and ended_at is null and provisioned_at is not null;
    if not found then
        raise exception 'grant % is not live', p_grant_id;
    end if;
    execute format('alter role %I password %L valid until %L', g.role_name, p_verifier, g.expires_at);
end
$fn$;

revoke all on function sharing.provision_grant(bigint, text), sharing.end_grant(bigint, text, text, text),
    sharing.set_grant_password(bigint, text) from public;

grant usage on schema sharing, granted to huiju_sharing;
grant select, insert, update on sharing.requests, sharing.grants to huiju_sharing;
grant usage, select on sequence sharing.requests_request_id_seq, sharing.grants_grant_id_seq to huiju_sharing;
grant select, insert on sharing.audit to huiju_sharing;  -- insert-only: no update, delete or truncate
grant select on sharing.audit_head to huiju_sharing;
grant execute on function sharing.provision_grant(bigint, text), sharing.end_grant(bigint, text, text, text),
    sharing.set_grant_password(bigint, text) to huiju_sharing;
-- Reminders and escalations go through the notices outbox (huiju.notices).
grant usage on schema ops to huiju_sharing;
grant select, insert, update on ops.notices, ops.notice_deliveries to huiju_sharing;
grant usage, select on all sequences in schema ops to huiju_sharing;
-- The stewards' dashboard reads the workflow and its trail.
grant usage on schema sharing to huiju_dashboard;
grant select on sharing.requests, sharing.grants, sharing.audit to huiju_dashboard;
