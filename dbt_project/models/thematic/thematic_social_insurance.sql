-- 社会保险主题 (人社 + 市场监管/民政/税务 登记): per employer (参保单位), how many people it insures and
-- for which 险种, next to what the registers say about the employer (name, status) — e.g. insurance
-- still paid by a 注销 company.
-- Only the latest version of each (单位, 人, 险种) record counts.
-- Incremental over the touched USCCs (macros/registers.sql; insurance records touch their employer).
-- depends_on: {{ ref('stg_raw__admin_penalty') }}
-- depends_on: {{ ref('stg_raw__enterprise_registration') }}, {{ ref('stg_raw__tax_registration') }}
-- depends_on: {{ ref('stg_raw__social_org_registration') }}, {{ ref('stg_raw__social_insurance') }}
-- depends_on: {{ ref('stg_raw__admin_license') }}, {{ ref('stg_raw__credit_list') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    unique_key='unit_uscc',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['unit_uscc'], 'unique': True}, {'columns': ['last_published_at']}],
    pre_hook="{{ delete_touched_uscc('unit_uscc') }}",
) }}

with
{% if is_incremental() -%}
touched as (
    {{ touched_uscc() }}
),
{%- endif %}

insured as (
    {{ latest_versions('stg_raw__social_insurance', ['unit_uscc', 'id_number', 'insurance_type'],
                       "unit_uscc in (select key from touched)" if is_incremental() else none) }}
),

by_unit as (
    select
        insured.unit_uscc,
        (array_agg(insured.unit_name order by insured.published_at desc, insured.load_id desc,
                   insured.source_row_no desc))[1] as unit_name_reported,
        count(distinct insured.id_number)::integer as insured_persons,
        count(distinct insured.id_number) filter (where insured.insurance_status = '参保缴费')::integer
            as contributing_persons,
        count(*) filter (where insured.insurance_type = '企业职工基本养老保险')::integer as pension_insured,
        count(*) filter (where insured.insurance_type = '职工基本医疗保险')::integer as medical_insured,
        count(*) filter (where insured.insurance_type = '失业保险')::integer as unemployment_insured,
        count(*) filter (where insured.insurance_type = '工伤保险')::integer as injury_insured,
        count(*) filter (where insured.insurance_type = '生育保险')::integer as maternity_insured,
        avg(insured.contribution_base) filter (where insured.insurance_status = '参保缴费')::numeric(12, 2)
            as average_contribution_base,
        max(insured.published_at) as insurance_published_at
    from insured
    group by insured.unit_uscc
),

final as (
    select
        by_unit.unit_uscc,
        coalesce(legal_person.legal_person_name, by_unit.unit_name_reported) as unit_name,
        legal_person.registration_status,
        legal_person.is_registered,
        by_unit.insured_persons,
        by_unit.contributing_persons,
        by_unit.pension_insured,
        by_unit.medical_insured,
        by_unit.unemployment_insured,
        by_unit.injury_insured,
        by_unit.maternity_insured,
        by_unit.average_contribution_base,
        legal_person.registration_status in ('注销', '吊销', '撤销') and by_unit.contributing_persons > 0
            as is_contributing_after_closure,
        greatest(by_unit.insurance_published_at, legal_person.last_published_at) as last_published_at
    from by_unit
    left join {{ ref('basic_legal_person') }} as legal_person on by_unit.unit_uscc = legal_person.uscc
)

select * from final
