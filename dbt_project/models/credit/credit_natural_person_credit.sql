-- 自然人信用: one row per person with a credit record — red/black list entries in force naming them
-- (by ID number), and the penalties on the legal persons they represent — keyed by the population
-- pseudonym. A view: entries past their 有效期至 or removed stop counting on that day.
-- Internal (the credit database): the share layer publishes no person-level credit.
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
    profiles.person_key,
    profiles.person_name,
    coalesce(listed.red_list_in_force, 0) as red_list_in_force,
    coalesce(listed.black_list_in_force, 0) as black_list_in_force,
    coalesce(listed.list_names, '{}') as list_names,
    profiles.penalties_as_legal_rep,
    profiles.represented_uscc,
    case
        when coalesce(listed.black_list_in_force, 0) > 0 then '黑名单'
        when coalesce(listed.red_list_in_force, 0) > 0 then '守信'
        when profiles.penalties_as_legal_rep > 0 then '关联处罚'
        else '一般'
    end as credit_status
from {{ ref('archive_natural_person_profile') }} as profiles
left join listed on profiles.person_key = listed.person_key
where listed.person_key is not null or profiles.penalties_as_legal_rep > 0
