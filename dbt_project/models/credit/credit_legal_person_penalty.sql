-- 法人行政处罚 (法人信用): penalties on 法人及非法人组织 and 个体工商户. A view, so that a record
-- past its 公示截止期 leaves the publishable set on that day, without waiting for a rebuild.
with penalties as (
    select * from {{ ref('credit_admin_penalty') }}
    where party_type in ('法人及非法人组织', '个体工商户')
),

final as (
    select
        {{ credit_penalty_items() }},
        {{ is_publishable('publish_until') }} as is_publishable,
        load_id,
        source_row_no,
        published_at
    from penalties
)

select * from final
