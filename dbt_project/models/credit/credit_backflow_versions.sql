-- The province's backflow (省回流), version by version: each decision version a backflow source sent
-- (行政处罚, 行政许可), the day its batch arrived (北京时间), and what the decision is in the credit records —
-- 本地 when a city department sent it too (one record, the city's: macros/credit_records.sql,
-- city_first_versions), 省回流 when only the province did. Decision numbers, sources and batches only (no
-- party, no ID number): `huiju push report` counts the backflow per day from it as the push component,
-- whose role reads the credit layer and never staging (least privilege; huiju/push/backflow.py).
with

backflow as (
    {%- for dataset, staging, records in [
        ('admin_penalty', 'stg_landing__admin_penalties', 'credit_admin_penalty'),
        ('admin_license', 'stg_landing__admin_licenses', 'credit_admin_license')] %}
    select
        '{{ dataset }}' as dataset,
        versions.source_id,
        versions.decision_no,
        records.origin as record_origin,
        versions.load_id,
        versions.source_row_no
    from {{ ref(staging) }} as versions
    left join {{ ref(records) }} as records on versions.decision_no = records.decision_no
    where versions.origin = '省回流'
    {{- "\n    union all" if not loop.last }}
    {%- endfor %}
),

final as (
    select
        backflow.dataset,
        backflow.source_id,
        backflow.decision_no,
        backflow.record_origin,
        (loads.received_at at time zone 'Asia/Shanghai')::date as received_date,
        backflow.load_id,
        backflow.source_row_no
    from backflow
    inner join {{ source('ledger', 'loads') }} as loads on backflow.load_id = loads.load_id
)

select * from final
