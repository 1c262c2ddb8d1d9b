-- 共享/公示：自然人行政许可 (双公示 v2), the publishable set only (licence in force, see
-- credit_admin_license), the person's name masked by its YAML flag (macro masked_columns). A view:
-- withdrawal after 有效期至 needs no rebuild.
{{ share_publication('credit_natural_person_license', where="is_publishable") }}
