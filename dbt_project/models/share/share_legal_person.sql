-- 共享：法人基础信息, offered to every department (无条件共享). Contract enforced.
-- A view (the layer's default): basic_legal_person is kept current incrementally and is unique
-- on uscc, so a copy rebuilt in full every day would only cost the daily build its size.

with legal_persons as (
    select * from {{ ref('basic_legal_person') }}
)

select
    {{ masked_columns('legal_persons') }}
from legal_persons
