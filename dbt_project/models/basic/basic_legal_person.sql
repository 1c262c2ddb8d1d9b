-- 法人基础库: one row per 统一社会信用代码, merged from what every department reports about it —
-- the parties of their penalties (法人及非法人组织, 个体工商户) and the authorities that issued them.
--
-- Precedence rule for parties (seed code_source_precedence): each attribute comes from the
-- contribution that has a value for it and whose department ranks first (1 = 市场监督管理局, the
-- registration authority; then 税务局; then the others; unlisted departments last); among equals
-- the latest 处罚决定日期, then the latest published batch, then the decision number.
-- An authority (机关) is named as on its own latest decision, which comes before what others
-- call it when it is also a party; its department is the one reporting that decision.
--
-- Incremental: only the USCCs that a newly published decision (any of its versions) names are
-- recomputed, each from all its data (macros/incremental.sql). Parties are aggregated over their
-- own penalties; an authority, which signs a large share of all decisions, is read through indexes
-- (latest decision, first and last dates) so a day's cost does not grow with its history.
-- depends_on: {{ ref('stg_raw__admin_penalty') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    unique_key='uscc',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['uscc'], 'unique': True}],
    pre_hook="{{ delete_touched('uscc', ['versions.uscc', 'versions.authority_uscc']) }}",
) }}

{%- set order = "precedence, decision_date desc nulls last, published_at desc, decision_no desc" %}

with
{% if is_incremental() -%}
touched as (
    {{ touched_keys(['versions.uscc', 'versions.authority_uscc']) }}
),
{%- endif %}

party_penalties as (
    select * from {{ ref('credit_admin_penalty') }}
    where
        uscc is not null
        and party_type in ('法人及非法人组织', '个体工商户')
        {% if is_incremental() -%}
        and uscc in (select key from touched)
        {%- endif %}
),

party_ranked as (
    select
        party_penalties.*,
        coalesce(precedence.precedence, 99) as precedence
    from party_penalties
    left join {{ ref('code_source_precedence') }} as precedence
        on party_penalties.source_department = precedence.department
),

parties as (
    select
        uscc,
        (array_agg(party_name order by {{ order }}) filter (where party_name is not null))[1] as legal_person_name,
        (array_agg(party_type order by {{ order }}))[1] as legal_person_type,
        (array_agg(legal_rep order by {{ order }}) filter (where legal_rep is not null))[1] as legal_rep,
        (array_agg(source_department order by {{ order }}))[1] as name_source_department,
        array_agg(distinct source_department) as known_to_departments,
        min(decision_date) as first_seen_date,
        max(decision_date) as last_seen_date,
        max(published_at) as last_published_at
    from party_ranked
    group by uscc
),

authority_keys as (
    -- only USCCs that sign decisions: the lookups below are for authorities, not for every party
    {% if is_incremental() -%}
    select touched_authorities.key as uscc from ({{ touched_keys(['versions.authority_uscc']) }}) as touched_authorities
    {%- else -%}
    select distinct authority_uscc as uscc from {{ ref('credit_admin_penalty') }} where authority_uscc is not null
    {%- endif %}
),

authorities as (
    select
        authority_keys.uscc,
        latest.authority as legal_person_name,
        latest.source_department,
        (select min(p.decision_date) from {{ ref('credit_admin_penalty') }} as p
         where p.authority_uscc = authority_keys.uscc) as first_seen_date,
        (select max(p.decision_date) from {{ ref('credit_admin_penalty') }} as p
         where p.authority_uscc = authority_keys.uscc) as last_seen_date,
        (select max(p.published_at) from {{ ref('credit_admin_penalty') }} as p
         where p.authority_uscc = authority_keys.uscc) as last_published_at
    from authority_keys
    cross join lateral (
        select p.authority, p.source_department
        from {{ ref('credit_admin_penalty') }} as p
        where p.authority_uscc = authority_keys.uscc
        order by p.decision_date desc, p.published_at desc, p.decision_no desc
        limit 1
    ) as latest
),

merged as (
    select
        coalesce(authorities.uscc, parties.uscc) as uscc,
        coalesce(authorities.legal_person_name, parties.legal_person_name) as legal_person_name,
        case when authorities.uscc is not null then '机关' else parties.legal_person_type end as legal_person_type,
        parties.legal_rep,
        authorities.uscc is not null as is_authority,
        coalesce(authorities.source_department, parties.name_source_department) as name_source_department,
        array(
            select distinct department
            from unnest(coalesce(parties.known_to_departments, '{}') || authorities.source_department) as department
            where department is not null
            order by department
        ) as known_to_departments,
        least(parties.first_seen_date, authorities.first_seen_date) as first_seen_date,
        greatest(parties.last_seen_date, authorities.last_seen_date) as last_seen_date,
        greatest(parties.last_published_at, authorities.last_published_at) as last_published_at
    from parties
    full outer join authorities on parties.uscc = authorities.uscc
),

final as (
    select
        merged.uscc,
        merged.legal_person_name,
        merged.legal_person_type,
        merged.legal_rep,
        merged.is_authority,
        substr(merged.uscc, 3, 6) as region_code,
        division.division_name as region_name,
        merged.name_source_department,
        merged.known_to_departments,
        merged.first_seen_date,
        merged.last_seen_date,
        merged.last_published_at
    from merged
    left join {{ ref('basic_admin_division') }} as division on substr(merged.uscc, 3, 6) = division.division_code
)

select * from final
