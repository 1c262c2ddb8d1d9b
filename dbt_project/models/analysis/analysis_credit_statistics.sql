-- 信用统计 (双公示): 行政处罚 and 行政许可 decided per month, by district, department (行业主管部门),
-- authority, category (处罚类别 / 许可类别) and party type — counts, fines (万元), legal vs natural
-- persons — as the platform knew them at the as-of instant (macros/analysis.sql: a report for a past
-- period reads what was published by the period's close; unset: now). Records without a district the
-- national list knows are under 000000 未知地区.
with

penalties as (
    select
        '行政处罚' as record_kind,
        decision_month,
        region_code,
        source_department,
        authority,
        penalty_type as category,
        party_type,
        is_natural_person,
        fine_amount_wan
    from {{ ref('analysis_penalty_facts') }}
    where {{ valid_as_of() }}
),

licenses as (
    select
        '行政许可' as record_kind,
        decision_month,
        region_code,
        source_department,
        authority,
        license_category as category,
        party_type,
        is_natural_person,
        0::numeric as fine_amount_wan
    from {{ ref('analysis_license_facts') }}
    where {{ valid_as_of() }}
),

decisions as (
    select * from penalties
    union all
    select * from licenses
),

final as (
    select
        decisions.record_kind,
        decisions.decision_month as stat_month,
        coalesce(decisions.region_code, '000000') as region_code,
        coalesce(divisions.full_name, '未知地区') as region_name,
        decisions.source_department,
        decisions.authority,
        coalesce(decisions.category, '未填写') as category,
        coalesce(decisions.party_type, '未填写') as party_type,
        count(*)::integer as decision_count,
        count(*) filter (where not decisions.is_natural_person)::integer as legal_person_count,
        count(*) filter (where decisions.is_natural_person)::integer as natural_person_count,
        sum(decisions.fine_amount_wan) as fine_total_wan
    from decisions
    left join {{ ref('basic_spatial_division') }} as divisions on decisions.region_code = divisions.division_code
    where decisions.decision_month is not null
    group by 1, 2, 3, 4, 5, 6, 7, 8
)

select * from final
