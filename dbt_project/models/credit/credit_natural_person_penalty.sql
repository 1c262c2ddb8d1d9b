-- 自然人行政处罚 (自然人信用): penalties on natural persons. Identifiers stay in the clear here
-- (the credit database is internal); everything publishable masks them (share layer).
with penalties as (
    select * from {{ ref('credit_admin_penalty') }}
    where party_type = '自然人'
),

final as (
    select
        decision_no,
        party_name,
        party_type,
        party_type_code,
        penalty_type,
        penalty_type_code,
        penalty_content,
        fine_amount_wan,
        decision_date,
        publish_until,
        authority,
        authority_uscc,
        source_department,
        {{ is_publishable('publish_until') }} as is_publishable,
        load_id,
        source_row_no,
        published_at
    from penalties
)

select * from final
