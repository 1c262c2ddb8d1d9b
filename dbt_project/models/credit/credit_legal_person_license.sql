-- 法人行政许可 (法人信用): licences granted to 法人及非法人组织 and 个体工商户. A view, so that a licence
-- past its 公示截止期 (credit_admin_license) leaves the publishable set on that day.
{{ credit_party_records('credit_admin_license') }}
