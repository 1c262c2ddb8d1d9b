-- 共享/公示：红黑名单 entries naming natural persons (e.g. 失信被执行人), the entries in force only
-- (not removed, within 有效期至). The name and the ID number are masked by their YAML flags (macro
-- masked_columns: surname kept; region and last four digits of the ID number kept, as the courts
-- publish them); the ID number in the clear never leaves the credit database. A view: an entry
-- leaves on the day it lapses.
{{ share_publication('credit_red_black_list', where="is_in_force and subject_type = '自然人'") }}
