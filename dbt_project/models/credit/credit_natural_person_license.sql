-- 自然人行政许可 (自然人信用): licences granted to natural persons. A view, so that a licence past
-- its 公示截止期 (credit_admin_license) leaves the publishable set on that day. The name stays in
-- the clear here (the credit database is internal); everything publishable masks it (share layer).
{{ credit_party_records('credit_admin_license', legal_person=false) }}
