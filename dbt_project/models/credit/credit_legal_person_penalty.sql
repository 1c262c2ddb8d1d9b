-- 法人行政处罚 (legal-person administrative penalties) with the 双公示 data items.
-- A record past its 公示截止期 stays here but is no longer publishable.
with penalties as (
    select * from {{ ref('stg_raw__admin_penalty') }}
    where party_type in ('法人及非法人组织', '个体工商户')
),

final as (
    select
        decision_no as "行政处罚决定书文号",
        party_name as "行政相对人名称",
        party_type as "行政相对人类别",
        uscc as "统一社会信用代码",
        legal_rep as "法定代表人",
        penalty_type as "处罚类别",
        penalty_content as "处罚内容",
        fine_amount_wan as "罚款金额（万元）",
        decision_date as "处罚决定日期",
        publish_until as "公示截止期",
        authority as "处罚机关",
        authority_uscc as "处罚机关统一社会信用代码",
        source_department as "数据来源单位",
        coalesce(publish_until >= current_date, true) as is_publishable,
        load_id,
        source_row_no
    from penalties
)

select * from final
