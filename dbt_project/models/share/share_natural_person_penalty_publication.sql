-- 共享/公示：自然人行政处罚, the publishable set only, the person's name masked (YAML flag).
with publishable as (
    select * from {{ ref('credit_natural_person_penalty') }}
    where is_publishable
)

select
    {{ masked_columns('publishable') }}
from publishable
