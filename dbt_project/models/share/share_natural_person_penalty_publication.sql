-- 共享/公示：自然人行政处罚, the publishable set only, the person's name masked (YAML flag).
{{ share_publication('credit_natural_person_penalty', where="is_publishable") }}
