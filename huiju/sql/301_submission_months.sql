-- Issue 17: the stewards' dashboard answers from a monthly summary of the submission ledger instead of
-- aggregating a year of ops.submissions on every page (the overview's trend and the month's 通报).
--
-- One row per month × department: the counts a department's monthly scorecard is made of (rates and the
-- score are computed from them in huiju.monitoring.scorecards). Derived, never edited: the monitor
-- (huiju.monitoring.ledger.refresh) rewrites the months its rebuilt ledger rows end in, in the same
-- transaction as the ledger, so the two never disagree; a test checks it against the ledger's own figures.
create table if not exists ops.submission_months (
    month             text not null check (month ~ '^\d{4}-\d{2}$'),    -- 2026-11: the periods that end in it
    department        text not null,
    periods_due       integer not null,      -- settled periods: on time, late, held or missing
    periods_delivered integer not null,      -- on time or late
    periods_on_time   integer not null,
    rows_received     bigint not null,
    rows_accepted     bigint not null,
    feedback_rows     bigint not null,
    rows_corrected    bigint not null,
    refreshed_at      timestamptz not null default now(),
    primary key (month, department)
);

-- The one computation of a department's month from the ledger: what the monitor writes and the migration
-- fills in below. A SQL function (inlined into the caller's query), so both use the same expressions.
create or replace function ops.submission_month_totals(p_department text, p_month text)
returns table (month text, department text, periods_due integer, periods_delivered integer,
               periods_on_time integer, rows_received bigint, rows_accepted bigint, feedback_rows bigint,
               rows_corrected bigint)
language sql stable
as $$
    select p_month, p_department,
           (count(*) filter (where s.status in ('on_time', 'late', 'held', 'missing')))::integer,
           (count(*) filter (where s.status in ('on_time', 'late')))::integer,
           (count(*) filter (where s.status = 'on_time'))::integer,
           coalesce(sum(s.rows_received), 0)::bigint, coalesce(sum(s.rows_accepted), 0)::bigint,
           coalesce(sum(s.feedback_rows), 0)::bigint, coalesce(sum(s.rows_corrected), 0)::bigint
      from ops.submissions s
     where s.department = p_department
       and s.period_end >= to_date(p_month, 'YYYY-MM')
       and s.period_end < (to_date(p_month, 'YYYY-MM') + interval '1 month')::date
    having count(*) > 0
$$;

-- Whoever reads or writes the ledger reads or writes its summary (the dashboard, the portal's scorecard,
-- the reports, the monitor running as validation), whichever role ran the earlier migrations.
do $$
declare
    grant_row record;
begin
    for grant_row in
        select grantee, string_agg(privilege_type, ', ') as privileges
          from information_schema.role_table_grants
         where table_schema = 'ops' and table_name = 'submissions'
           and privilege_type in ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
           and grantee <> current_user
         group by grantee
    loop
        execute format('grant %s on ops.submission_months to %I', grant_row.privileges, grant_row.grantee);
    end loop;
end
$$;

-- The ledger as it stands (an existing warehouse): every month of every department.
insert into ops.submission_months (month, department, periods_due, periods_delivered, periods_on_time,
                                   rows_received, rows_accepted, feedback_rows, rows_corrected)
select t.*
  from (select distinct department, to_char(period_end, 'YYYY-MM') as month from ops.submissions) k
 cross join lateral ops.submission_month_totals(k.department, k.month) t
on conflict (month, department) do nothing;

-- What the overview reads besides the summary (EXPLAIN ANALYZE on the 300-source benchmark: each was a
-- sequential scan of the whole ledger):
-- the day the ledger was last derived for (max(as_of));
create index if not exists submissions_as_of on ops.submissions (as_of);
-- periods still without anything usable, by their last on-time day (the overdue list, the older ones' count);
create index if not exists submissions_undelivered on ops.submissions (late_after) where delivered_at is null;
-- periods delivered after the day asked about (the overdue list as of a past day).
create index if not exists submissions_delivered on ops.submissions (delivered_at);
-- The 催报 notices of the last two months by kind (the overdue list's ladder step), not the whole outbox.
create index if not exists notices_kind_created on ops.notices (kind, created_at);
