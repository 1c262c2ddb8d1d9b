-- 自然人信用 (internal): one row per person named by a red/black list entry in force (by ID number),
-- keyed by the population pseudonym, with the penalties on the legal persons they represent.
-- A table, not a view: the pseudonym needs the key, which only dbt's own sessions hold (a view would
-- fail for every other reader), so "in force" is as of the last build (the daily run).
-- The share layer publishes no person-level credit.
{{ config(materialized='table', indexes=[{'columns': ['person_key'], 'unique': True}]) }}

with listed as (
    select
        {{ pseudonym('id_number') }} as person_key,
        count(*) filter (where list_kind = '红名单')::integer as red_list_in_force,
        count(*) filter (where list_kind = '黑名单')::integer as black_list_in_force,
        array_agg(distinct list_name order by list_name) as list_names
    from {{ ref('credit_red_black_list') }}
    where is_in_force and id_number is not null
    group by id_number
)

select
    listed.person_key,
    profiles.person_name,
    listed.red_list_in_force,
    listed.black_list_in_force,
    listed.list_names,
    coalesce(profiles.penalties_as_legal_rep, 0) as penalties_as_legal_rep,
    coalesce(profiles.represented_uscc, '{}') as represented_uscc,
    case when listed.black_list_in_force > 0 then '黑名单' else '守信' end as credit_status
from listed
left join {{ ref('archive_natural_person_profile') }} as profiles on listed.person_key = profiles.person_key
