-- 共享/公示：撤回, the published records a department deleted at the source — 双公示 (行政处罚, 行政许可,
-- keyed by 决定书文号) and 红黑名单 entries (keyed by 名单编号) — for the push targets and the share
-- readers to take back what they were given: one row per record and withdrawal (a record deleted, sent
-- again and deleted again is withdrawn twice; every raw row of one withdrawal shares its time). A view
-- over ops.withdrawals: a withdrawal is here as soon as the channel finds it. The records themselves
-- have left staging, credit and the publication views; here only their key.
with published_keys (dataset, key_field) as (
    values
    ('admin_penalty', 'decision_no'),
    ('admin_license', 'decision_no'),
    ('credit_list', 'entry_no')
),

withdrawn as (
    select
        withdrawals.dataset,
        published_keys.key_field,
        btrim(withdrawals.natural_key ->> published_keys.key_field) as record_key,
        withdrawals.source_id,
        withdrawals.withdrawn_at
    from {{ source('ledger', 'withdrawals') }} as withdrawals
    inner join published_keys on withdrawals.dataset = published_keys.dataset
),

final as (
    select distinct
        dataset,
        key_field,
        record_key,
        case when key_field = 'decision_no' then record_key end as decision_no,
        source_id,
        withdrawn_at
    from withdrawn
)

select * from final
