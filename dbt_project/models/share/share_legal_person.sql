-- 共享：法人基础信息, offered to every department (无条件共享). Contract enforced.
{{ config(materialized='table') }}

with legal_persons as (
    select * from {{ ref('basic_legal_person') }}
)

select
    {{ masked_columns('legal_persons') }}
from legal_persons
