-- 法人行政处罚 (法人信用): penalties on 法人及非法人组织 and 个体工商户. A view, so that a record
-- past its 公示截止期 leaves the publishable set on that day, without waiting for a rebuild.
{{ credit_party_records('credit_admin_penalty') }}
