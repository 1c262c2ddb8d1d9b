-- 法人行政许可 (法人信用): licences granted to 法人及非法人组织 and 个体工商户. A view, so that a licence
-- past its 公示截止期 (credit_admin_license) leaves the publishable set on that day.
select
    decision_no,
    party_name,
    party_type,
    party_type_code,
    uscc,
    legal_rep,
    legal_rep_id_no,
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
where party_type in ('法人及非法人组织', '个体工商户')
