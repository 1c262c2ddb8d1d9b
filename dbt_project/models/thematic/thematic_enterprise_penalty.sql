-- 企业违法失信主题: per enterprise (统一社会信用代码) and per department that penalised it — market
-- regulation, environment, tax … — how often, how much, since when. One enterprise penalised by
-- several departments has one row per department (see is_multi_department).
-- Incremental: the USCCs named by newly published data are recomputed (macros/registers.sql: the
-- legal person's name comes from basic_legal_person, which registers and licences change too).
-- depends_on: {{ ref('stg_landing__admin_penalties') }}
-- depends_on: {{ ref('stg_landing__enterprise_registrations') }}, {{ ref('stg_landing__tax_registrations') }}
-- depends_on: {{ ref('stg_landing__social_org_registrations') }}
-- depends_on: {{ ref('stg_landing__social_insurance_enrollments') }}
-- depends_on: {{ ref('stg_landing__admin_licenses') }}, {{ ref('stg_landing__credit_list_entries') }}
{{ config(
    unique_key=['uscc', 'source_department'],
    indexes=[{'columns': ['uscc', 'source_department'], 'unique': True}, {'columns': ['last_published_at']}],
    pre_hook="{{ delete_touched_uscc() }}",
) }}

with penalties as (
    select * from {{ ref('credit_admin_penalty') }}
    where
        uscc is not null
        and party_type in ('法人及非法人组织', '个体工商户')
        {% if is_incremental() -%}
        and uscc in ({{ touched_uscc() }})
        {%- endif %}
),

by_department as (
    select
        uscc,
        source_department,
        count(*)::integer as penalty_count,
        count(*) filter (where penalty_type = '罚款')::integer as fine_count,
        coalesce(sum(fine_amount_wan), 0) as fine_total_wan,
        min(decision_date) as first_decision_date,
        max(decision_date) as last_decision_date,
        max(published_at) as last_published_at
    from penalties
    group by uscc, source_department
),

final as (
    select
        by_department.uscc,
        legal_person.legal_person_name,
        legal_person.legal_person_type,
        by_department.source_department,
        precedence.department_name as source_department_name,
        by_department.penalty_count,
        by_department.fine_count,
        by_department.fine_total_wan,
        by_department.first_decision_date,
        by_department.last_decision_date,
        count(*) over (partition by by_department.uscc) > 1 as is_multi_department,
        by_department.last_published_at
    from by_department
    left join {{ ref('basic_legal_person') }} as legal_person on by_department.uscc = legal_person.uscc
    left join {{ ref('code_source_precedence') }} as precedence
        on by_department.source_department = precedence.department
)

select * from final
