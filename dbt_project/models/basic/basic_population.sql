-- 人口基础库: one row per person known by a valid 公民身份号码, keyed by a pseudonym (keyed HMAC of
-- the ID number, macros/pseudonym.sql); the ID number itself is not kept. Persons come from the
-- 户籍 register (公安) and from everywhere else an ID number appears: insured persons (人社), legal
-- representatives (registers, penalties, licences) and persons on the red/black lists.
--
-- Precedence (as for legal persons, seed code_source_precedence): an attribute comes from the
-- record that has it and ranks first by kind — 1 户籍, 2 社保参保, 3 a register's legal
-- representative, 4 a decision or list entry — then department precedence, then the latest
-- published batch, then the record key. Sex and birth date are the 户籍 register's, else read
-- from the ID number; the household region is the register's, else the ID number's first six digits.
-- Incremental: the touched ID numbers' pseudonyms (macros/registers.sql) are recomputed.
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

{%- set touched = is_incremental() %}

with
{% if touched -%}
touched as (
    {{ touched_id_numbers() }}
),
{%- endif %}

contributions as (
    select
        id_number,
        person_name,
        gender,
        birth_date,
        region_code,
        ethnicity,
        household_status,
        '户籍人口' as person_role,
        null::text as uscc,
        source_department,
        1 as kind_rank,
        published_at,
        load_id || ':' || source_row_no as record_key
    from ({{ latest_versions('stg_landing__household_registrations', ['id_number'],
                             'id_number is not null' ~ population_only_touched('id_number')) }}) as residents
    union all
    select
        id_number,
        person_name,
        null as gender,
        null as birth_date,
        null as region_code,
        null as ethnicity,
        null as household_status,
        '参保人员' as person_role,
        unit_uscc as uscc,
        source_department,
        2 as kind_rank,
        published_at,
        load_id || ':' || source_row_no as record_key
    from ({{ latest_versions('stg_landing__social_insurance_enrollments', ['unit_uscc', 'id_number', 'insurance_type'],
                             'id_number is not null' ~ population_only_touched('id_number')) }}) as insured
    union all
    {{ population_register_reps('stg_landing__enterprise_registrations') }}
    union all
    {{ population_register_reps('stg_landing__social_org_registrations') }}
    union all
    {{ population_register_reps('stg_landing__tax_registrations') }}
    union all
    {%- for decisions in ['credit_admin_penalty', 'credit_admin_license'] %}
    select
        legal_rep_id_no as id_number,
        legal_rep as person_name,
        null as gender,
        null as birth_date,
        null as region_code,
        null as ethnicity,
        null as household_status,
        '法定代表人' as person_role,
        uscc,
        source_department,
        4 as kind_rank,
        published_at,
        decision_no as record_key
    from {{ ref(decisions) }}
    where
        legal_rep_id_no is not null
        {{ population_only_touched('legal_rep_id_no') }}
    union all
    {%- endfor %}
    select
        id_number,
        subject_name as person_name,
        null as gender,
        null as birth_date,
        null as region_code,
        null as ethnicity,
        null as household_status,
        list_kind || '主体' as person_role,
        null as uscc,
        source_department,
        4 as kind_rank,
        published_at,
        entry_no as record_key
    from ({{ latest_entries_naming_persons() }}) as listed
),

ranked as (
    select
        contributions.*,
        coalesce(precedence.precedence, 99) as precedence
    from contributions
    left join {{ ref('code_source_precedence') }} as precedence
        on contributions.source_department = precedence.department
),

{%- set order = "kind_rank, precedence, published_at desc, record_key desc" %}

merged as (
    select
        id_number,
        (array_agg(person_name order by {{ order }}) filter (where person_name is not null))[1] as person_name,
        (array_agg(gender order by {{ order }}) filter (where gender is not null))[1] as registered_gender,
        (array_agg(birth_date order by {{ order }}) filter (where birth_date is not null))[1] as registered_birth_date,
        (
            array_agg(region_code order by {{ order }}) filter (where region_code is not null)
        )[1] as registered_region_code,
        (array_agg(ethnicity order by {{ order }}) filter (where ethnicity is not null))[1] as ethnicity,
        (array_agg(household_status order by {{ order }}) filter (where household_status is not null))[1]
            as household_status,
        bool_or(kind_rank = 1) as is_registered_resident,
        string_agg(distinct person_role, '、' order by person_role) as known_roles,
        count(distinct uscc) filter (where person_role = '法定代表人') as legal_person_count,
        count(distinct uscc) filter (where person_role = '参保人员') as insured_unit_count,
        array_agg(distinct source_department order by source_department) as known_to_departments,
        max(published_at) as last_published_at
    from ranked
    group by id_number
),

final as (
    select
        {{ pseudonym('id_number') }} as person_key,
        person_name,
        coalesce(registered_gender, case
            when length(id_number) = 18
                then case when substr(id_number, 17, 1)::integer % 2 = 1 then '男' else '女' end
        end) as gender,
        coalesce(
            registered_birth_date,
            case when length(id_number) = 18 then to_date(substr(id_number, 7, 8), 'YYYYMMDD') end)
            as birth_date,
        coalesce(registered_region_code, left(id_number, 6)) as household_region_code,
        known_roles,
        legal_person_count,
        known_to_departments,
        last_published_at,
        is_registered_resident,
        ethnicity,
        household_status,
        insured_unit_count
    from merged
)

select * from final
