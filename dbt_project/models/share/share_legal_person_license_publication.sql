-- 共享/公示：法人行政许可 (双公示 v2), the publishable set only (licence in force, see
-- credit_admin_license), the legal representative's ID number masked by its YAML flag. A view:
-- withdrawal after 有效期至 needs no rebuild. Licences of natural persons are published apart
-- (share_natural_person_license_publication).
{{ share_publication('credit_legal_person_license', where="is_publishable") }}
