-- 双公示及时率: per month of receipt, department and dataset, the decision versions received, how many
-- within 7 working days of the decision (credit_publication_timeliness, the one place the rule is
-- counted), how many late, how many the calendar could not judge yet, and the working days taken
-- on average (ops.work_calendar) — as published by the as-of instant (macros/analysis.sql).
with

received as (
    select * from {{ ref('credit_publication_timeliness') }}
    where published_at <= {{ analysis_as_of() }} and received_date is not null
),

final as (
    select
        date_trunc('month', received.received_date)::date as stat_month,
        received.source_department,
        received.dataset,
        count(*)::integer as received_count,
        count(*) filter (where received.is_on_time)::integer as on_time_count,
        count(*) filter (where not received.is_on_time)::integer as late_count,
        count(*) filter (where received.is_on_time is null)::integer as unjudged_count,
        round(avg((
            select count(*) from ops.work_calendar
            where
                work_calendar.kind = 'working'
                and work_calendar.day > received.decision_date
                and work_calendar.day <= received.received_date
        )) filter (where received.is_on_time is not null), 1) as avg_working_days
    from received
    group by 1, 2, 3
)

select * from final
