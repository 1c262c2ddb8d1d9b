-- 自然人档案: one row per person of the population base (pseudonymous key), with the legal persons
-- they represent and the penalties those legal persons received, per department.
-- Incremental over the touched ID numbers, like basic_population.
-- depends_on: {{ ref('stg_raw__admin_penalty') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    unique_key='person_key',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['person_key'], 'unique': True}],
    pre_hook="{% if is_incremental() %}delete from {{ this }} where person_key in (select "
             ~ "{{ pseudonym('key') }} from ({{ touched_keys(['versions.legal_rep_id_no']) }}) as touched)"
             ~ "{% else %}select 1{% endif %}",
) }}

with penalties as (
    select
        legal_rep_id_no,
        uscc,
        source_department
    from {{ ref('credit_admin_penalty') }}
    where
        legal_rep_id_no is not null
        {% if is_incremental() -%}
        and legal_rep_id_no in ({{ touched_keys(['versions.legal_rep_id_no']) }})
        {%- endif %}
),

by_department as (
    select
        legal_rep_id_no,
        jsonb_object_agg(source_department, penalties) as penalties_by_department
    from (
        select legal_rep_id_no, source_department, count(*)::integer as penalties
        from penalties
        group by legal_rep_id_no, source_department
    ) as counted
    group by legal_rep_id_no
),

represented as (
    select
        legal_rep_id_no,
        array_agg(distinct uscc order by uscc) filter (where uscc is not null) as represented_uscc,
        count(*)::integer as penalties_as_legal_rep
    from penalties
    group by legal_rep_id_no
),

keyed as (
    -- aggregated per ID number first: the pseudonym (two SHA-256 each) is computed once per person
    select
        {{ pseudonym('represented.legal_rep_id_no') }} as person_key,
        represented.represented_uscc,
        represented.penalties_as_legal_rep,
        by_department.penalties_by_department
    from represented
    inner join by_department on represented.legal_rep_id_no = by_department.legal_rep_id_no
),

final as (
    select
        population.person_key,
        population.person_name,
        population.gender,
        population.birth_date,
        population.household_region_code,
        population.known_to_departments,
        keyed.represented_uscc,
        keyed.penalties_as_legal_rep,
        keyed.penalties_by_department,
        population.last_published_at
    from keyed
    inner join {{ ref('basic_population') }} as population on keyed.person_key = population.person_key
)

select * from final
