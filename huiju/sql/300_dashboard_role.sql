-- Issue 17: the stewards' dashboard (on Airflow's API server) reads the ledger and the quarantine and
-- writes nothing. Its own group role, like each component of 160_roles.sql: select on ops and
-- quarantine (default privileges cover the tables later migrations add), no raw, no layer, no portal.
do $$
begin
    if not exists (select from pg_roles where rolname = 'huiju_dashboard') then
        begin
            create role huiju_dashboard nologin;
        exception when duplicate_object or unique_violation then null;  -- another database's migration
        end;
    end if;
    if not exists (select from pg_roles where rolname = 'huiju_dashboard_login') then
        begin
            create role huiju_dashboard_login login;
        exception when duplicate_object or unique_violation then null;
        end;
    end if;
    execute format('grant connect on database %I to huiju_dashboard', current_database());
end
$$;
grant huiju_dashboard to huiju_dashboard_login;
alter role huiju_dashboard_login set role huiju_dashboard;

grant usage on schema ops, quarantine to huiju_dashboard;
grant select on all tables in schema ops, quarantine to huiju_dashboard;
alter default privileges in schema ops, quarantine grant select on tables to huiju_dashboard;

-- A source's latest period before a day (the dashboard's 各数据项报送状态): one index probe per source.
create index if not exists submissions_source_end on ops.submissions (source_id, period_end);
