-- 行政处罚 (双公示 v2), one row per 行政处罚决定书文号: the version from the latest published batch
-- (a correction replaces the record it corrects), with the national codes of 行政相对人类别 and 处罚类别.
-- Incremental: only decisions with a version published since the last run are recomputed, each
-- from all of its versions, so the result equals a full refresh.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='decision_no',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['decision_no'], 'unique': True},
        {'columns': ['uscc']},
        {'columns': ['published_at']},
        {'columns': ['legal_rep_id_no']},
        {'columns': ['authority_uscc', 'decision_date', 'published_at', 'decision_no']},
        {'columns': ['authority_uscc', 'published_at']},
    ],
) }}

with versions as (
    select * from {{ ref('stg_raw__admin_penalty') }}
    {% if is_incremental() -%}
    where decision_no in ({{ new_decisions('published_at') }})
    {%- endif %}
),

ranked as (
    select
        *,
        row_number() over (
            partition by decision_no order by published_at desc, load_id desc, source_row_no desc
        ) as version_rank,
        count(*) over (partition by decision_no) as version_count,
        min(published_at) over (partition by decision_no) as first_published_at
    from versions
),

party_types as (
    select * from {{ ref('code_party_type') }}
),

penalty_types as (
    select * from {{ ref('code_penalty_type') }}
),

final as (
    select
        ranked.decision_no,
        ranked.party_name,
        ranked.party_type,
        party_types.party_type_code,
        ranked.uscc,
        ranked.legal_rep,
        ranked.legal_rep_id_no,
        ranked.penalty_type,
        (
            -- one code per 处罚类别; several are separated by ';' (99 其他 for one not in the code list)
            select string_agg(coalesce(penalty_types.penalty_type_code, '99'), ';' order by parts.position)
            from unnest(string_to_array(ranked.penalty_type, ';')) with ordinality as parts (name, position)
            left join penalty_types on btrim(parts.name) = penalty_types.penalty_type
        ) as penalty_type_code,
        ranked.penalty_content,
        ranked.fine_amount_wan,
        ranked.decision_date,
        ranked.publish_until,
        ranked.authority,
        ranked.authority_uscc,
        ranked.source_department,
        ranked.source_id,
        ranked.load_id,
        ranked.source_row_no,
        ranked.published_at,
        ranked.first_published_at,
        ranked.version_count::integer as version_count
    from ranked
    left join party_types on ranked.party_type = party_types.party_type
    where ranked.version_rank = 1
)

select * from final
