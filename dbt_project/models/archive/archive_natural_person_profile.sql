-- 自然人档案: one row per person of the population base (pseudonymous key), with what every
-- department knows about them: the 户籍 record, the legal persons they represent (registers and
-- penalties), the penalties those received per department, their social insurance (人社) and the
-- red/black list entries naming them.
-- Incremental over the touched ID numbers (macros/registers.sql), like basic_population.
-- depends_on: {{ ref('stg_landing__admin_penalties') }}
-- depends_on: {{ ref('stg_landing__enterprise_registrations') }}, {{ ref('stg_landing__tax_registrations') }}
-- depends_on: {{ ref('stg_landing__social_org_registrations') }}
-- depends_on: {{ ref('stg_landing__social_insurance_enrollments') }}
-- depends_on: {{ ref('stg_landing__admin_licenses') }}, {{ ref('stg_landing__credit_list_entries') }}
-- depends_on: {{ ref('stg_landing__household_registrations') }}
{{ config(
    unique_key='person_key',
    indexes=[{'columns': ['person_key'], 'unique': True}, {'columns': ['last_published_at']}],
    pre_hook="{{ delete_touched_persons() }}",
) }}

with
{% if is_incremental() -%}
touched as (
    {{ touched_id_numbers() }}
),
{%- endif %}

penalties as (
    select
        legal_rep_id_no as id_number,
        uscc,
        source_department
    from {{ ref('credit_admin_penalty') }}
    where
        legal_rep_id_no is not null
        {{ population_only_touched('legal_rep_id_no') }}
),

penalties_by_department as (
    select
        id_number,
        jsonb_object_agg(source_department, penalties) as penalties_by_department,
        sum(penalties)::integer as penalties_as_legal_rep
    from (
        select
            id_number,
            source_department,
            count(*)::integer as penalties
        from penalties
        group by id_number, source_department
    ) as counted
    group by id_number
),

represented as (
    select
        id_number,
        array_agg(distinct uscc order by uscc) as represented_uscc
    from (
        select
            id_number,
            uscc
        from penalties
        where uscc is not null
        union all
        select
            id_number,
            uscc
        from ({{ population_register_reps('stg_landing__enterprise_registrations') }}) as r
        union all
        select
            id_number,
            uscc
        from ({{ population_register_reps('stg_landing__social_org_registrations') }}) as r
    ) as represented_by
    group by id_number
),

insurance as (
    select
        id_number,
        count(distinct unit_uscc)::integer as insured_units,
        array_agg(distinct insurance_type order by insurance_type)
        filter (where insurance_status = '参保缴费') as contributing_insurance_types
    from ({{ latest_versions('stg_landing__social_insurance_enrollments', ['unit_uscc', 'id_number', 'insurance_type'],
                             'id_number is not null' ~ population_only_touched('id_number')) }}) as insured
    group by id_number
),

lists as (
    select
        id_number,
        count(*)::integer as list_entries,
        count(*) filter (where list_kind = '黑名单' and removed_date is null)::integer as black_list_entries
    from ({{ latest_entries_naming_persons() }}) as listed
    group by id_number
),

ids as (
    select represented.id_number from represented
    union
    select penalties_by_department.id_number from penalties_by_department
    union
    select insurance.id_number from insurance
    union
    select lists.id_number from lists
),

facts as (
    -- aggregated per ID number first: the pseudonym (two SHA-256 each) is computed once per person
    select
        {{ pseudonym('ids.id_number') }} as person_key,
        represented.represented_uscc,
        penalties_by_department.penalties_as_legal_rep,
        penalties_by_department.penalties_by_department,
        insurance.insured_units,
        insurance.contributing_insurance_types,
        lists.list_entries,
        lists.black_list_entries
    from ids
    left join represented on ids.id_number = represented.id_number
    left join penalties_by_department on ids.id_number = penalties_by_department.id_number
    left join insurance on ids.id_number = insurance.id_number
    left join lists on ids.id_number = lists.id_number
),

population as (
    select * from {{ ref('basic_population') }}
    {% if is_incremental() -%}
    where person_key in (select {{ pseudonym('touched.touched_key') }} from touched)
    {%- endif %}
),

final as (
    select
        population.person_key,
        population.person_name,
        population.gender,
        population.birth_date,
        population.household_region_code,
        population.known_to_departments,
        coalesce(facts.represented_uscc, '{}') as represented_uscc,
        coalesce(facts.penalties_as_legal_rep, 0) as penalties_as_legal_rep,
        coalesce(facts.penalties_by_department, '{}'::jsonb) as penalties_by_department,
        population.last_published_at,
        population.known_roles,
        population.is_registered_resident,
        population.household_status,
        coalesce(facts.insured_units, 0) as insured_units,
        coalesce(facts.contributing_insurance_types, '{}') as contributing_insurance_types,
        coalesce(facts.list_entries, 0) as list_entries,
        coalesce(facts.black_list_entries, 0) as black_list_entries
    from population
    left join facts on population.person_key = facts.person_key
)

select * from final
