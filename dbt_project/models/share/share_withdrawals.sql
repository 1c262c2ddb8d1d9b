-- 共享/公示：撤回, the 双公示 records (行政处罚, 行政许可) a department deleted at the source, for the
-- push targets to take back what they were sent: one row per decision and withdrawal (a record
-- deleted, sent again and deleted again is withdrawn twice; every raw row of one withdrawal shares
-- its time). A view over ops.withdrawals: a withdrawal is here as soon as the channel finds it. The
-- records themselves have left staging, credit and the publication views; here only their key.
select distinct
    dataset,
    btrim(natural_key ->> 'decision_no') as decision_no,
    source_id,
    withdrawn_at
from {{ source('ledger', 'withdrawals') }}
where dataset in ('admin_penalty', 'admin_license')
