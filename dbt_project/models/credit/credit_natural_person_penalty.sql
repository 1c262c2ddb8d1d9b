-- 自然人行政处罚 (自然人信用): penalties on natural persons. Identifiers stay in the clear here
-- (the credit database is internal); everything publishable masks them (share layer).
with penalties as (
    select * from {{ ref('credit_admin_penalty') }}
    where party_type = '自然人'
),

final as (
    select
        {{ credit_penalty_items(legal_person=false) }},
        {{ is_publishable('publish_until') }} as is_publishable,
        load_id,
        source_row_no,
        published_at
    from penalties
)

select * from final
