-- 法人信用: one row per legal person — its publishable penalties and licences, its red/black list
-- entries in force and its 纳税信用等级 — with a summary 信用状况. A view over the archive profile and
-- the credit records, so that what has left its 公示期 stops counting on that day.
--   信用状况: 黑名单 when a 黑名单 entry is in force; else 重点关注 with a publishable penalty or a
--   纳税信用等级 of D; else 守信 with a 红名单 entry in force or 纳税信用等级 A; else 一般.
with profiles as (
    select * from {{ ref('archive_legal_person_profile') }}
    where not is_authority
),

penalties as (
    select
        uscc,
        count(*)::integer as publishable_penalties
    from {{ ref('credit_legal_person_penalty') }}
    where is_publishable
    group by uscc
),

licenses as (
    select
        uscc,
        count(*)::integer as publishable_licenses
    from {{ ref('credit_legal_person_license') }}
    where is_publishable
    group by uscc
),

lists as (
    select
        uscc,
        count(*) filter (where list_kind = '红名单')::integer as red_list_in_force,
        count(*) filter (where list_kind = '黑名单')::integer as black_list_in_force
    from {{ ref('credit_red_black_list') }}
    where is_in_force and uscc is not null
    group by uscc
)

select
    profiles.uscc,
    profiles.legal_person_name,
    profiles.legal_person_type,
    profiles.legal_rep,
    profiles.registration_status,
    profiles.tax_credit_rating,
    coalesce(penalties.publishable_penalties, 0) as publishable_penalties,
    coalesce(licenses.publishable_licenses, 0) as publishable_licenses,
    coalesce(lists.red_list_in_force, 0) as red_list_in_force,
    coalesce(lists.black_list_in_force, 0) as black_list_in_force,
    case
        when coalesce(lists.black_list_in_force, 0) > 0 then '黑名单'
        when coalesce(penalties.publishable_penalties, 0) > 0 or profiles.tax_credit_rating = 'D' then '重点关注'
        when coalesce(lists.red_list_in_force, 0) > 0 or profiles.tax_credit_rating = 'A' then '守信'
        else '一般'
    end as credit_status,
    profiles.last_published_at
from profiles
left join penalties on profiles.uscc = penalties.uscc
left join licenses on profiles.uscc = licenses.uscc
left join lists on profiles.uscc = lists.uscc
