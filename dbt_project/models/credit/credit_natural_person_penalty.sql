-- 自然人行政处罚 (自然人信用): penalties on natural persons. Identifiers stay in the clear here
-- (the credit database is internal); everything publishable masks them (share layer).
{{ credit_party_records('credit_admin_penalty', legal_person=false) }}
