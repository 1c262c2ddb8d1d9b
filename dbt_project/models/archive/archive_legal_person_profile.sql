-- 法人档案: one row per legal person with what every department knows about it — the merged basic
-- record, the departments that reported it, its penalties per department (as a JSON object keyed by department code).
-- Incremental over the same touched USCCs as basic_legal_person.
-- depends_on: {{ ref('stg_raw__admin_penalty') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    unique_key='uscc',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['uscc'], 'unique': True}],
    pre_hook="{{ delete_touched('uscc', ['versions.uscc', 'versions.authority_uscc']) }}",
) }}

with
{% if is_incremental() -%}
touched as (
    {{ touched_keys(['versions.uscc', 'versions.authority_uscc']) }}
),
{%- endif %}

legal_persons as (
    select * from {{ ref('basic_legal_person') }}
    {% if is_incremental() -%}
    where uscc in (select key from touched)
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
            'first', first_decision_date, 'last', last_decision_date)) as penalties_by_department
    from {{ ref('thematic_enterprise_penalty') }}
    where uscc in (select uscc from legal_persons)
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
        legal_persons.last_published_at
    from legal_persons
    left join penalties on legal_persons.uscc = penalties.uscc
)

select * from final
