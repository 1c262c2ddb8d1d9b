-- 双公示 timeliness: a 行政处罚 or 行政许可 decision reaches the platform within 7 working days of
-- its decision date. One row per decision version received (a correction is a version of its own,
-- judged by when it arrived). The deadline is counted by ops.add_working_days over ops.work_calendar
-- (macros/analysis.sql: publication_deadline()), the warehouse's copy of huiju.workdays (migration 131):
-- null, and is_on_time null, when the count would cross a day of a year no calendar holds, or the decision
-- date is missing. A view, so a calendar year added later judges the decisions it could not judge before
-- without a rebuild.
-- The monitoring run reads it (huiju monitor's 双公示超期): macros/grants.sql.
{{ config(post_hook="{{ grant_select_to_monitoring() }}") }}

with

decisions as (
    {%- for dataset, staging in [('admin_penalty', 'stg_landing__admin_penalties'),
                                 ('admin_license', 'stg_landing__admin_licenses')] %}
    select
        '{{ dataset }}' as dataset,
        decision_no,
        source_department,
        decision_date,
        load_id,
        source_row_no,
        published_at
    from {{ ref(staging) }}
    where origin is distinct from '省回流'  -- the province's backflow is no city department's 双公示 duty
    {{- "\n    union all" if not loop.last }}
    {%- endfor %}
),

received as (
    select
        decisions.*,
        (loads.received_at at time zone 'Asia/Shanghai')::date as received_date
    from decisions
    inner join {{ source('ledger', 'loads') }} as loads on decisions.load_id = loads.load_id
),

final as (
    select
        dataset,
        decision_no,
        source_department,
        decision_date,
        received_date,
        {{ publication_deadline('decision_date') }} as deadline_date,
        load_id,
        source_row_no,
        published_at
    from received
)

select
    *,
    received_date <= deadline_date as is_on_time
from final
