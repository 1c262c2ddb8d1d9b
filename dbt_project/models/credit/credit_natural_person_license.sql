-- 自然人行政许可 (自然人信用): licences granted to natural persons. A view, so that a licence past
-- its 公示截止期 (credit_admin_license) leaves the publishable set on that day. The name stays in
-- the clear here (the credit database is internal); everything publishable masks it (share layer).
select
    decision_no,
    party_name,
    party_type,
    party_type_code,
    license_category,
    license_category_code,
    certificate_name,
    license_no,
    license_content,
    decision_date,
    valid_from,
    valid_to,
    publish_until,
    authority,
    authority_uscc,
    source_department,
    source_department_name,
    {{ is_publishable('publish_until') }} as is_publishable,
    load_id,
    source_row_no,
    published_at
from {{ ref('credit_admin_license') }}
where party_type = '自然人'
