-- Issue 15: least privilege in the warehouse. Every component connects with a LOGIN role of its own
-- (huiju.warehouse.COMPONENT_ROLES), a member of one NOLOGIN group role that holds the privileges;
-- the role that runs migrations (the owner/admin) is the only one that owns the platform's tables.
-- Passwords are not set here: huiju.warehouse sets them at bootstrap from var/secrets (mode 0600).
--
-- Granted by schema and by default privileges, so that a table a later migration adds to ops,
-- quarantine, dbt_state or portal is covered without an edit here (as long as the same admin role
-- runs that migration). A new schema needs its own grants in its migration.
--
-- Roles are global to the server: created only where missing (a second database, a test database).
do $$
declare
    role_name text;
begin
    foreach role_name in array array['huiju_landing', 'huiju_validation', 'huiju_transform',
                                     'huiju_share_reader', 'huiju_portal', 'huiju_airflow'] loop
        if not exists (select from pg_roles where rolname = role_name) then
            begin
                execute format('create role %I nologin', role_name);
            exception when duplicate_object or unique_violation then null;  -- another database's migration
            end;
        end if;
        if not exists (select from pg_roles where rolname = role_name || '_login') then
            begin
                execute format('create role %I login', role_name || '_login');
            exception when duplicate_object or unique_violation then null;
            end;
        end if;
        execute format('grant %I to %I', role_name, role_name || '_login');
        -- Each session starts as the group (what it creates belongs to the group, whichever login made it);
        -- a role setting, so no rollback undoes it (dbt keeps connections across nodes, rolling back between).
        execute format('alter role %I set role %I', role_name || '_login', role_name);
    end loop;
end
$$;

-- The portal lands and validates what departments submit in its own process.
grant huiju_landing, huiju_validation to huiju_portal;

-- The database: nobody but these roles may connect; only the transformation creates schemas (dbt's layers).
do $$
begin
    execute format('revoke all on database %I from public', current_database());
    execute format('grant connect, temporary on database %I to huiju_landing, huiju_validation, huiju_transform,'
                   ' huiju_portal', current_database());
    execute format('grant connect on database %I to huiju_share_reader', current_database());
    execute format('grant create on database %I to huiju_transform', current_database());
end
$$;

revoke all on schema public from public;

-- dbt's layers belong to the transformation (it rebuilds them); created here so that the share
-- reader's default privileges can name them before dbt ever ran.
create schema if not exists staging;
create schema if not exists basic;
create schema if not exists thematic;
create schema if not exists archive;
create schema if not exists credit;
create schema if not exists share;
create schema if not exists analysis;

do $$
declare
    layer text;
    relation record;
begin
    foreach layer in array array['staging', 'basic', 'thematic', 'archive', 'credit', 'share', 'analysis'] loop
        execute format('alter schema %I owner to huiju_transform', layer);
        execute format('revoke all on schema %I from public', layer);
        -- A warehouse built before this migration: its relations pass to the transformation.
        for relation in
            select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = layer and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
        loop
            execute format('alter %s %I.%I owner to huiju_transform',
                           case relation.relkind when 'v' then 'view' when 'm' then 'materialized view'
                                                 when 'S' then 'sequence' when 'f' then 'foreign table'
                                                 else 'table' end,
                           layer, relation.relname);
        end loop;
    end loop;
    -- raw tables are created by the landing (huiju.landing.raw), which must be able to alter them.
    for relation in
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'raw' and c.relkind in ('r', 'p')
    loop
        execute format('alter table raw.%I owner to huiju_landing', relation.relname);
    end loop;
end
$$;

-- The portal's schema (its tables come with 190_portal.sql, and get the default privileges below).
create schema if not exists portal;

revoke all on schema raw, quarantine, ops, dbt_state, portal from public;

-- raw: the landing creates and writes it; validation and transformation read it.
grant usage, create on schema raw to huiju_landing;
grant usage on schema raw to huiju_validation, huiju_transform;
grant select on all tables in schema raw to huiju_validation, huiju_transform;
alter default privileges for role huiju_landing in schema raw grant select on tables to huiju_validation, huiju_transform;

-- ops (the ledger, notices, …) and quarantine: written by landing and validation; the transformation
-- reads quarantine and keeps its own state in ops.
grant usage on schema ops, quarantine to huiju_landing, huiju_validation, huiju_transform;
grant select, insert, update, delete on all tables in schema ops, quarantine to huiju_landing, huiju_validation;
grant select, insert, update, delete on all tables in schema ops to huiju_transform;
grant select on all tables in schema quarantine to huiju_transform;
grant usage, select, update on all sequences in schema ops, quarantine to huiju_landing, huiju_validation,
    huiju_transform;
alter default privileges in schema ops, quarantine
    grant select, insert, update, delete on tables to huiju_landing, huiju_validation;
alter default privileges in schema ops grant select, insert, update, delete on tables to huiju_transform;
alter default privileges in schema quarantine grant select on tables to huiju_transform;
alter default privileges in schema ops, quarantine
    grant usage, select, update on sequences to huiju_landing, huiju_validation, huiju_transform;

-- dbt_state: what dbt keeps between builds.
grant usage on schema dbt_state to huiju_transform;
grant select, insert, update, delete on all tables in schema dbt_state to huiju_transform;
alter default privileges in schema dbt_state grant select, insert, update, delete on tables to huiju_transform;

-- portal: the portal's own state (accounts, sessions, audit).
grant usage on schema portal to huiju_portal;
grant select, insert, update, delete on all tables in schema portal to huiju_portal;
grant usage, select, update on all sequences in schema portal to huiju_portal;
alter default privileges in schema portal grant select, insert, update, delete on tables to huiju_portal;
alter default privileges in schema portal grant usage, select, update on sequences to huiju_portal;

-- share: what consumers read, and nothing else (its views run with their owner's rights).
grant usage on schema share to huiju_share_reader;
grant select on all tables in schema share to huiju_share_reader;
alter default privileges for role huiju_transform in schema share grant select on tables to huiju_share_reader;
