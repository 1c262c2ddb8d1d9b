-- 人口基础库: one row per person known by a valid 公民身份号码, keyed by a pseudonym (keyed HMAC of
-- the ID number, macros/pseudonym.sql); the ID number itself is not kept. Today the only persons
-- with ID numbers are legal representatives in the penalty data; a population register (公安户籍)
-- is the dataset this needs to become complete.
-- Incremental like basic_legal_person, keyed by the touched ID numbers' pseudonyms.
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
    select * from {{ ref('credit_admin_penalty') }}
    where
        legal_rep_id_no is not null
        {% if is_incremental() -%}
        and legal_rep_id_no in ({{ touched_keys(['versions.legal_rep_id_no']) }})
        {%- endif %}
),

ranked as (
    select
        penalties.*,
        coalesce(precedence.precedence, 99) as precedence
    from penalties
    left join {{ ref('code_source_precedence') }} as precedence
        on penalties.source_department = precedence.department
),

merged as (
    select
        legal_rep_id_no,
        (array_agg(legal_rep order by precedence, decision_date desc nulls last, published_at desc, decision_no desc)
            filter (where legal_rep is not null))[1] as person_name,
        count(distinct uscc) as legal_person_count,
        array_agg(distinct source_department order by source_department) as known_to_departments,
        max(published_at) as last_published_at
    from ranked
    group by legal_rep_id_no
),

final as (
    select
        {{ pseudonym('legal_rep_id_no') }} as person_key,
        person_name,
        case when length(legal_rep_id_no) = 18
            then case when substr(legal_rep_id_no, 17, 1)::integer % 2 = 1 then '男' else '女' end
        end as gender,
        case when length(legal_rep_id_no) = 18 then to_date(substr(legal_rep_id_no, 7, 8), 'YYYYMMDD') end
            as birth_date,
        left(legal_rep_id_no, 6) as household_region_code,
        '法定代表人' as known_roles,
        legal_person_count,
        known_to_departments,
        last_published_at
    from merged
)

select * from final
