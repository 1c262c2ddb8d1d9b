-- 共享/公示：红黑名单 of legal persons (法人及非法人组织, 个体工商户), the entries in force only (not
-- removed, within 有效期至). A view: an entry leaves on the day it lapses. Entries naming natural
-- persons are published apart, their identifiers masked (share_natural_person_red_black_list_publication).
{{ share_publication('credit_red_black_list', where="is_in_force and subject_type <> '自然人'") }}
