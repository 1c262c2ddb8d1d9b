-- The dbt models took dbt Labs' names (dbt_project/README.md): staging is named after its source, the
-- landing zone (stg_raw__admin_penalty → stg_landing__admin_penalties …), and the two views whose
-- `snap_` prefix said "dbt snapshot" are now *_history. A warehouse built before keeps what it holds:
-- each staging table is renamed, so its next build adds the day's batches instead of staging every
-- batch again; the old views are dropped (dbt builds them under their new names). Nothing happens on
-- a warehouse dbt has not built yet.
do $$
declare
    model record;
begin
    for model in
        select * from (values
            ('stg_raw__admin_penalty', 'stg_landing__admin_penalties'),
            ('stg_raw__admin_license', 'stg_landing__admin_licenses'),
            ('stg_raw__credit_list', 'stg_landing__credit_list_entries'),
            ('stg_raw__enterprise_registration', 'stg_landing__enterprise_registrations'),
            ('stg_raw__household_registration', 'stg_landing__household_registrations'),
            ('stg_raw__social_insurance', 'stg_landing__social_insurance_enrollments'),
            ('stg_raw__social_org_registration', 'stg_landing__social_org_registrations'),
            ('stg_raw__tax_registration', 'stg_landing__tax_registrations')
        ) as names (old_name, new_name)
    loop
        if to_regclass(format('staging.%I', model.old_name)) is not null
           and to_regclass(format('staging.%I', model.new_name)) is null then
            execute format('alter table staging.%I rename to %I', model.old_name, model.new_name);
        end if;
    end loop;
    -- a view only: a table of this name is the dbt snapshot archive_legal_person_versions takes over
    if exists (select 1 from pg_class where oid = to_regclass('archive.snap_basic_legal_person') and relkind = 'v') then
        drop view archive.snap_basic_legal_person;
    end if;
    if exists (select 1 from pg_class where oid = to_regclass('credit.snap_credit_admin_penalty') and relkind = 'v') then
        drop view credit.snap_credit_admin_penalty;
    end if;
end $$;

-- (an older build's row where a newer one already recorded the new name is simply stale)
delete from dbt_state.test_watermark
where model = 'stg_raw__admin_penalty'
  and exists (select 1 from dbt_state.test_watermark where model = 'stg_landing__admin_penalties');
update dbt_state.test_watermark set model = 'stg_landing__admin_penalties' where model = 'stg_raw__admin_penalty';
