-- 社会保险主题 (人社 + 公安户籍 + 市场监管/民政/税务 登记): per employer (参保单位), how many people it
-- insures and for which 险种, how many of them are registered residents of the city (户籍 正常) and
-- how many come from elsewhere, next to what the registers say about the employer (name, status) —
-- e.g. insurance still paid by a 注销 company. The same theme per 户籍 division (coverage of the
-- registered residents) is thematic_social_insurance_coverage.
-- Only the latest version of each (单位, 人, 险种) record and of each 户籍 record counts.
-- Incremental over the touched USCCs (macros/registers.sql; insurance records touch their employer,
-- and a changed 户籍 record every employer insuring that person: touched_insurance_units).
-- depends_on: {{ ref('stg_landing__admin_penalties') }}
-- depends_on: {{ ref('stg_landing__enterprise_registrations') }}, {{ ref('stg_landing__tax_registrations') }}
-- depends_on: {{ ref('stg_landing__social_org_registrations') }}
-- depends_on: {{ ref('stg_landing__social_insurance_enrollments') }}
-- depends_on: {{ ref('stg_landing__admin_licenses') }}, {{ ref('stg_landing__credit_list_entries') }}
-- depends_on: {{ ref('stg_landing__household_registrations') }}
{{ config(
    unique_key='unit_uscc',
    indexes=[{'columns': ['unit_uscc'], 'unique': True}, {'columns': ['last_published_at']}],
    pre_hook="{{ delete_touched_uscc('unit_uscc', insurance_units=true) }}",
) }}

with
{% if is_incremental() -%}
touched as (
    {{ touched_insurance_units() }}
),
{%- endif %}

insured as (
    {{ latest_versions('stg_landing__social_insurance_enrollments', ['unit_uscc', 'id_number', 'insurance_type'],
                       "unit_uscc in (select touched.touched_key from touched)" if is_incremental() else none) }}
),

residents as (
    -- the insured persons' 户籍 (latest version), looked up by ID number
    select distinct on (id_number)
        id_number,
        household_status,
        published_at
    from {{ ref('stg_landing__household_registrations') }}
    where id_number in (select insured.id_number from insured)
    order by id_number asc, published_at desc, load_id desc, source_row_no desc
),

by_unit as (
    select
        insured.unit_uscc,
        (array_agg(
            insured.unit_name order by
                insured.published_at desc, insured.load_id desc,
                insured.source_row_no desc
        ))[1] as unit_name_reported,
        count(distinct insured.id_number)::integer as insured_persons,
        count(distinct insured.id_number) filter (where residents.household_status = '正常')::integer
            as resident_persons,
        count(distinct insured.id_number) filter (where insured.insurance_status = '参保缴费')::integer
            as contributing_persons,
        count(*) filter (where insured.insurance_type = '企业职工基本养老保险')::integer as pension_insured,
        count(*) filter (where insured.insurance_type = '职工基本医疗保险')::integer as medical_insured,
        count(*) filter (where insured.insurance_type = '失业保险')::integer as unemployment_insured,
        count(*) filter (where insured.insurance_type = '工伤保险')::integer as injury_insured,
        count(*) filter (where insured.insurance_type = '生育保险')::integer as maternity_insured,
        avg(insured.contribution_base) filter (where insured.insurance_status = '参保缴费')::numeric(12, 2)
            as average_contribution_base,
        greatest(max(insured.published_at), max(residents.published_at)) as insurance_published_at
    from insured
    left join residents on insured.id_number = residents.id_number
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
        greatest(by_unit.insurance_published_at, legal_person.last_published_at) as last_published_at,
        by_unit.resident_persons,
        by_unit.insured_persons - by_unit.resident_persons as non_resident_persons
    from by_unit
    left join {{ ref('basic_legal_person') }} as legal_person on by_unit.unit_uscc = legal_person.uscc
)

select * from final
