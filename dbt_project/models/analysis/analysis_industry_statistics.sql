-- 信用统计·分行业: 行政处罚 and 行政许可 decided per month by the industry (国民经济行业分类 GB/T 4754-2017,
-- its section 门类) of the party as its 企业登记 names it — not the department that reported the decision,
-- which is analysis_credit_statistics' source_department. A decision's party is found by its USCC in the
-- registrations published by the as-of instant (its latest version then: macros/analysis.sql), so a
-- report for a past period reads the industry registered by the period's close. Natural persons have no
-- industry (自然人); legal persons without a registration, or whose registration names no industry,
-- are 未知行业. The registration is looked up per decision (an index probe on the staging model's USCC),
-- so a month's statistics read a month's decisions, not every registration.
with

decisions as (
    {%- for kind, facts, staging, fine in [
        ('行政处罚', 'analysis_penalty_facts', 'stg_landing__admin_penalties', 'facts.fine_amount_wan'),
        ('行政许可', 'analysis_license_facts', 'stg_landing__admin_licenses', '0::numeric')] %}
    select
        '{{ kind }}' as record_kind,
        facts.decision_month,
        facts.is_natural_person,
        {{ fine }} as fine_amount_wan,
        versions.uscc
    from {{ ref(facts) }} as facts
    inner join {{ ref(staging) }} as versions
        on facts.load_id = versions.load_id and facts.source_row_no = versions.source_row_no
    where {{ valid_as_of('facts') }}
    {{- "\n    union all" if not loop.last }}
    {%- endfor %}
),

classified as (
    select
        decisions.record_kind,
        decisions.decision_month,
        decisions.is_natural_person,
        decisions.fine_amount_wan,
        sections.industry_section,
        sections.industry_section_name
    from decisions
    left join lateral (
        select registrations.industry_code
        from {{ ref('stg_landing__enterprise_registrations') }} as registrations
        where
            not decisions.is_natural_person
            and registrations.uscc = decisions.uscc
            and registrations.published_at <= {{ analysis_as_of() }}
        order by registrations.published_at desc, registrations.load_id desc, registrations.source_row_no desc
        limit 1
    ) as registration on true
    left join {{ ref('code_industry_section') }} as sections
        on upper(left(registration.industry_code, 1)) = sections.industry_section
    where decisions.decision_month is not null
),

named as (
    select
        record_kind,
        decision_month as stat_month,
        case when is_natural_person then '-' else coalesce(industry_section, '?') end as industry_section,
        case
            when is_natural_person then '自然人'
            else coalesce(industry_section_name, '未知行业')
        end as industry_name,
        fine_amount_wan
    from classified
),

final as (
    select
        record_kind,
        stat_month,
        industry_section,
        industry_name,
        count(*)::integer as decision_count,
        sum(fine_amount_wan) as fine_total_wan
    from named
    group by record_kind, stat_month, industry_section, industry_name
)

select * from final
