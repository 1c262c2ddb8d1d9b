-- 法人档案: one row per legal person with what every department knows about it — the merged basic
-- record (registration, tax standing), the departments that reported it, its penalties per department
-- (as a JSON object keyed by department code), its licences per department, the people it insures
-- (人社) and its red/black list entries.
-- Incremental over the same touched USCCs as basic_legal_person (macros/registers.sql).
-- depends_on: {{ ref('stg_landing__admin_penalties') }}
-- depends_on: {{ ref('stg_landing__enterprise_registrations') }}, {{ ref('stg_landing__tax_registrations') }}
-- depends_on: {{ ref('stg_landing__social_org_registrations') }}
-- depends_on: {{ ref('stg_landing__social_insurance_enrollments') }}
-- depends_on: {{ ref('stg_landing__admin_licenses') }}, {{ ref('stg_landing__credit_list_entries') }}
{{ config(
    unique_key='uscc',
    indexes=[{'columns': ['uscc'], 'unique': True}, {'columns': ['last_published_at']}],
    pre_hook="{{ delete_touched_uscc() }}",
) }}

with
{% if is_incremental() -%}
touched as (
    {{ touched_uscc() }}
),
{%- endif %}

legal_persons as (
    select * from {{ ref('basic_legal_person') }}
    {% if is_incremental() -%}
    where uscc in (select touched.touched_key from touched)
    {%- endif %}
),

penalties as (
    select
        uscc,
        sum(penalty_count)::integer as penalty_count,
        sum(fine_total_wan) as fine_total_wan,
        max(last_decision_date) as last_penalty_date,
        jsonb_object_agg(source_department, jsonb_build_object(
            'penalties', penalty_count, 'fine_total_wan', fine_total_wan,
            'first', first_decision_date, 'last', last_decision_date
        )) as penalties_by_department
    from {{ ref('thematic_enterprise_penalty') }}
    where uscc in (select legal_persons.uscc from legal_persons)
    group by uscc
),

licenses as (
    select
        uscc,
        count(*)::integer as license_count,
        jsonb_object_agg(source_department, licenses) as licenses_by_department
    from (
        select
            uscc,
            source_department,
            count(*)::integer as licenses
        from {{ ref('credit_admin_license') }}
        where uscc in (select legal_persons.uscc from legal_persons)
        group by uscc, source_department
    ) as counted
    group by uscc
),

insurance as (
    select
        unit_uscc as uscc,
        count(distinct id_number)::integer as insured_persons
    from ({{ latest_versions('stg_landing__social_insurance_enrollments', ['unit_uscc', 'id_number', 'insurance_type'],
                             'unit_uscc in (select legal_persons.uscc from legal_persons)') }}) as insured
    where insurance_status = '参保缴费'
    group by unit_uscc
),

lists as (
    select
        uscc,
        count(*) filter (where list_kind = '红名单' and removed_date is null)::integer as red_list_entries,
        count(*) filter (where list_kind = '黑名单' and removed_date is null)::integer as black_list_entries,
        array_agg(distinct list_name order by list_name) as list_names
    from ({{ latest_versions('stg_landing__credit_list_entries', ['entry_no'],
        "entry_no in (select entry_no from " ~ ref('stg_landing__credit_list_entries') ~ " where uscc in (select legal_persons.uscc from legal_persons))") }}) as listed
    where uscc in (select legal_persons.uscc from legal_persons)
    group by uscc
),

final as (
    select
        legal_persons.uscc,
        legal_persons.legal_person_name,
        legal_persons.legal_person_type,
        legal_persons.legal_rep,
        legal_persons.region_code,
        legal_persons.region_name,
        legal_persons.is_authority,
        legal_persons.known_to_departments,
        coalesce(penalties.penalty_count, 0) as penalty_count,
        coalesce(penalties.fine_total_wan, 0) as fine_total_wan,
        penalties.last_penalty_date,
        coalesce(penalties.penalties_by_department, '{}'::jsonb) as penalties_by_department,
        legal_persons.last_published_at,
        legal_persons.enterprise_type,
        legal_persons.registration_status,
        legal_persons.established_date,
        legal_persons.registered_capital_wan,
        legal_persons.tax_status,
        legal_persons.tax_credit_rating,
        coalesce(licenses.license_count, 0) as license_count,
        coalesce(licenses.licenses_by_department, '{}'::jsonb) as licenses_by_department,
        coalesce(insurance.insured_persons, 0) as insured_persons,
        coalesce(lists.red_list_entries, 0) as red_list_entries,
        coalesce(lists.black_list_entries, 0) as black_list_entries,
        coalesce(lists.list_names, '{}') as list_names
    from legal_persons
    left join penalties on legal_persons.uscc = penalties.uscc
    left join licenses on legal_persons.uscc = licenses.uscc
    left join insurance on legal_persons.uscc = insurance.uscc
    left join lists on legal_persons.uscc = lists.uscc
)

select * from final
