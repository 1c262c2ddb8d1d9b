-- 共享/公示：法人行政处罚, the publishable set only (within 公示截止期), natural persons' identifiers
-- masked by the columns' YAML flags. A view: withdrawal after 公示截止期 needs no rebuild.
{{ share_publication('credit_legal_person_penalty', where="is_publishable") }}
