-- 共享/公示：撤回, the published records a department deleted at the source — 双公示 (行政处罚, 行政许可,
-- keyed by 决定书文号), 红黑名单 entries (keyed by 名单编号) and the registrations behind 法人基础信息
-- (企业登记, 社会组织登记, 税务登记, keyed by 统一社会信用代码) — for the push targets and the share
-- readers to take back what they were given: one row per record and withdrawal (a record deleted, sent
-- again and deleted again is withdrawn twice; every raw row of one withdrawal shares its time). A view
-- over ops.withdrawals: a withdrawal is here as soon as the channel finds it. The records themselves
-- have left staging, credit and the publication views (a registration: the legal person is recomputed
-- without it in basic_legal_person, and leaves it when nothing else names it); here only their key, read
-- as staging reads it (a code NFKC and upper-case, a decision or entry number trimmed).
with published_keys (dataset, key_field, is_code) as (
    values
    ('admin_penalty', 'decision_no', false),
    ('admin_license', 'decision_no', false),
    ('credit_list', 'entry_no', false),
    ('enterprise_registration', 'uscc', true),
    ('social_org_registration', 'uscc', true),
    ('tax_registration', 'uscc', true)
),

withdrawn as (
    select
        withdrawals.dataset,
        published_keys.key_field,
        published_keys.is_code,
        withdrawals.natural_key ->> published_keys.key_field as received_key,
        withdrawals.source_id,
        withdrawals.withdrawn_at
    from {{ source('ledger', 'withdrawals') }} as withdrawals
    inner join published_keys on withdrawals.dataset = published_keys.dataset
),

keyed as (
    select
        dataset,
        key_field,
        -- a code read as ops.normalise_code (huiju/sql/040_feedback.sql) reads it, spelt out — keep the two
        -- alike: the share readers may not use the ops schema, and a view calls functions with its reader's rights
        case
            when is_code
                then upper(nullif(btrim(normalize(received_key, nfkc), e' \t\r\n\u00a0\u3000'), '') collate "C")
            else btrim(received_key)
        end as record_key,
        source_id,
        withdrawn_at
    from withdrawn
),

final as (
    select distinct
        dataset,
        key_field,
        record_key,
        case when key_field = 'decision_no' then record_key end as decision_no,
        source_id,
        withdrawn_at
    from keyed
)

select * from final
