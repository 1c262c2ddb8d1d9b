-- 企业全生命周期主题 (市场监管 + 税务 + 许可 + 处罚): one row per legal person that has registered or
-- is known to the market regulation, tax or licensing departments — when it was founded, whether it
-- still exists, its tax standing, the licences it holds and the penalties it received — and the
-- stage of life that makes it in: 设立 (first year), 存续, 经营异常 (a 非正常 taxpayer), 注销/吊销.
-- A view, not an incremental table: it is a thin join of basic_legal_person (incremental) with
-- per-USCC aggregates, so it costs the daily build nothing, and its tests read only what they need
-- (PostgreSQL drops the unused joins).
{{ config(materialized='view_if_changed') }}

with
legal_persons as (
    select * from {{ ref('basic_legal_person') }}
    where
        not is_authority
        and (
            is_registered or tax_status is not null
            or uscc in (select licensed.uscc from {{ ref('credit_admin_license') }} as licensed)
        )
),

licenses as (
    select
        uscc,
        count(*)::integer as license_count,
        max(valid_to) as latest_license_valid_to,
        min(decision_date) as first_license_date,
        array_agg(distinct source_department order by source_department) as licensing_departments
    from {{ ref('credit_admin_license') }}
    where uscc in (select legal_persons.uscc from legal_persons)
    group by uscc
),

penalties as (
    select
        uscc,
        sum(penalty_count)::integer as penalty_count,
        sum(fine_total_wan) as fine_total_wan,
        max(last_decision_date) as last_penalty_date
    from {{ ref('thematic_enterprise_penalty') }}
    where uscc in (select legal_persons.uscc from legal_persons)
    group by uscc
),

final as (
    select
        legal_persons.uscc,
        legal_persons.legal_person_name,
        legal_persons.enterprise_type,
        legal_persons.region_code,
        legal_persons.established_date,
        legal_persons.registration_status,
        legal_persons.registered_capital_wan,
        legal_persons.tax_status,
        legal_persons.tax_credit_rating,
        coalesce(licenses.license_count, 0) as license_count,
        licenses.latest_license_valid_to,
        licenses.first_license_date,
        coalesce(penalties.penalty_count, 0) as penalty_count,
        coalesce(penalties.fine_total_wan, 0) as fine_total_wan,
        penalties.last_penalty_date,
        case
            when legal_persons.registration_status in ('注销', '吊销', '撤销') then legal_persons.registration_status
            when legal_persons.tax_status = '非正常' then '经营异常'
            when legal_persons.established_date > legal_persons.last_published_at::date - 365 then '设立'
            when legal_persons.is_registered then '存续'
            else '未登记'
        end as lifecycle_stage,
        array(
            select distinct department from
                unnest(
                    legal_persons.known_to_departments || coalesce(licenses.licensing_departments, '{}')
                ) as department
            order by department
        ) as source_departments,
        legal_persons.last_published_at
    from legal_persons
    left join licenses on legal_persons.uscc = licenses.uscc
    left join penalties on legal_persons.uscc = penalties.uscc
)

select * from final
