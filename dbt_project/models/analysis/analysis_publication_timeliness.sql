-- 双公示及时率: per month of receipt, department and dataset, the decision versions received, how many
-- within 7 working days of the decision (publication_deadline(), the rule credit_publication_timeliness
-- judges each row by), how many late, how many the calendar could not judge yet, and the working days taken
-- on average (ops.work_calendar) — as published by the as-of instant (macros/analysis.sql). The rows are
-- counted per (decision date, received date) first, then each pair judged and its working days counted
-- once: a month's ~10,000 decisions share a few hundred pairs, and judging each row (a calendar look-up
-- per row) was what report_monthly spent most of its time on.
with

received as (
    select * from {{ ref('credit_publication_timeliness') }}
    where published_at <= {{ analysis_as_of() }} and received_date is not null
),

pairs as (
    select
        date_trunc('month', received_date)::date as stat_month,
        source_department,
        dataset,
        decision_date,
        received_date,
        count(*) as received_count
    from received
    group by 1, 2, 3, 4, 5
),

judged as (
    select
        pairs.*,
        pairs.received_date <= {{ publication_deadline('pairs.decision_date') }} as is_on_time
    from pairs
),

timed as (
    select
        judged.*,
        (
            select count(*) from ops.work_calendar
            where
                work_calendar.kind = 'working'
                and work_calendar.day > judged.decision_date
                and work_calendar.day <= judged.received_date
        ) as working_days
    from judged
),

final as (
    select
        stat_month,
        source_department,
        dataset,
        sum(received_count)::integer as received_count,
        coalesce(sum(received_count) filter (where is_on_time), 0)::integer as on_time_count,
        coalesce(sum(received_count) filter (where not is_on_time), 0)::integer as late_count,
        coalesce(sum(received_count) filter (where is_on_time is null), 0)::integer as unjudged_count,
        round(
            sum(working_days * received_count) filter (where is_on_time is not null)::numeric
            / nullif(sum(received_count) filter (where is_on_time is not null), 0), 1
        ) as avg_working_days
    from timed
    group by 1, 2, 3
)

select * from final
