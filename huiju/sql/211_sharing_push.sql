-- Issue 20: 共享方式 push (数据推送) — a grant delivered to the requester on a schedule: pushed to the system its
-- department declared (config/sharing/receivers/<department>.yaml) through the push machinery (huiju.push:
-- outbox, batches with deterministic ids and idempotency keys, receipts), or, for a department without one,
-- exported as a file to its portal download area; and the data service API's rate limit shared by every
-- portal process.
--
-- sharing.requests.delivery / sharing.grants.delivery  push | export, when the request is for a resource
--                     shared by push: approving the request approves that way too (the requester's own
--                     department receives it).
-- sharing.deliveries  one row per grant and period (the business day): the snapshot of the grant's rows
--                     delivered for it, exactly once — pushed (its batches are the push outbox's, under the
--                     outbox name share_grant_<id>) or exported (the file in the archive, by its sha256).
-- sharing.api_calls   calls per API token (its sha256) and minute, counted in the warehouse so the limit
--                     holds across portal processes (huiju.sharing.grants.admit_call).
--
-- The push component (huiju_push) delivers both ways (huiju.sharing.delivery): it reads a delivered grant's rows
-- through the grant's own function (so the read is audited and refused once the grant ends, as every other
-- read), sees of the grants and requests only what it needs, records deliveries and appends to the audit
-- trail; nothing else of sharing.
alter table sharing.requests add column if not exists delivery text check (delivery in ('push', 'export'));
alter table sharing.grants add column if not exists delivery text check (delivery in ('push', 'export'));

create table if not exists sharing.deliveries (
    grant_id     bigint not null references sharing.grants (grant_id),
    period       date not null,                    -- the business day (Asia/Shanghai) the snapshot is of
    way          text not null check (way in ('push', 'export')),
    target       text,                             -- push: the outbox's name for it, share_grant_<id>
    file_ref     text,                             -- export: the file in the archive
    file_sha256  text check (file_sha256 ~ '^[0-9a-f]{64}$'),
    records      integer not null,
    queued_at    timestamptz not null default now(),
    primary key (grant_id, period),
    check ((way = 'push') = (target is not null) and (way = 'export') = (file_ref is not null))
);

create table if not exists sharing.api_calls (
    token_sha256  text not null,
    window_start  timestamptz not null,           -- the minute counted
    calls         integer not null default 0,
    primary key (token_sha256, window_start)
);

-- As in 210, with deliveries: the grant's function is executable by the push component too when the grant is
-- delivered (pushed or exported), and a read by it is audited as delivery_read.
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
    -- Read by the grant's role (the view: every row), by the data service API as the sharing component (a
    -- page) or by the push component (a period's delivery); each way one audit row per call, saying which.
    body := format($body$
        #variable_conflict use_column
        begin
            if not exists (select from sharing.grants where grant_id = %1$s and ended_at is null
                           and expires_at > now()) then
                raise exception using errcode = '42501', message = '共享授权已撤销或已到期（grant %1$s）';
            end if;
            insert into sharing.audit (kind, actor, request_id, grant_id, detail)
                values (case when session_user = %6$L then 'db_read'
                             when pg_has_role(session_user, 'huiju_push', 'member')
                                  and not pg_has_role(session_user, 'huiju_sharing', 'member') then 'delivery_read'
                             else 'api_read' end, session_user, %2$s, %1$s,
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
    if g.delivery is not null then
        execute format('grant execute on function granted.%I(bigint, bigint) to huiju_push', g.view_name || '_rows');
    end if;
    execute format('create view granted.%I as select * from granted.%I()', g.view_name, g.view_name || '_rows');
    execute format('grant select on granted.%I to %I', g.view_name, g.role_name);
    update sharing.grants set provisioned_at = now() where grant_id = p_grant_id;
end
$fn$;

-- As in 210, and a push grant's deliveries stop at once: its open batches (not yet sent, or sent without an
-- answer, which would be asked about and sent again) and its outbox rows not yet settled are refused: never
-- sent (again). A batch on the wire at this moment is answered and recorded as it is.
create or replace function sharing.end_grant(p_grant_id bigint, p_as text, p_by text, p_reason text)
returns void language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
    g record;
    outbox_name text := format('share_grant_%s', p_grant_id);
    why text := case p_as when 'revoked' then '共享授权已撤销' else '共享授权已到期' end;
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
    update ops.push_batches set state = 'refused', last_error = why, done_at = now()
        where target = outbox_name and state in ('pending', 'sending');
    update ops.push_outbox set state = 'refused', reason = why, settled_at = now()
        where target = outbox_name and state in ('due', 'batched', 'unknown');
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

revoke all on function sharing.provision_grant(bigint, text), sharing.end_grant(bigint, text, text, text)
    from public;

grant select, insert, update, delete on sharing.api_calls to huiju_sharing;
grant select on sharing.deliveries to huiju_sharing, huiju_dashboard;

-- The push component: which live grants to deliver (no token digest, no role name, no document), the
-- deliveries, the audit trail (insert only), and the functions of the grants it delivers, given one by one.
grant usage on schema sharing, granted to huiju_push;
grant select (grant_id, request_id, view_name, fields, expires_at, ended_at, delivery) on sharing.grants
    to huiju_push;
grant select (request_id, resource_id, requester_department) on sharing.requests to huiju_push;
grant select, insert on sharing.deliveries to huiju_push;
grant insert, select (seq) on sharing.audit to huiju_push;  -- seq: what an append returns
