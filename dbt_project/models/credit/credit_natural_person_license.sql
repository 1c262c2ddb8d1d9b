-- 自然人行政许可 (自然人信用): licences granted to natural persons. A view, so that a licence past
-- its 公示截止期 (credit_admin_license) leaves the publishable set on that day. The name stays in
-- the clear here (the credit database is internal); everything publishable masks it (share layer).
select
    {{ credit_license_items(legal_person=false) }},
    {{ is_publishable('publish_until') }} as is_publishable,
    load_id,
    source_row_no,
    published_at
from {{ ref('credit_admin_license') }}
where party_type = '自然人'
