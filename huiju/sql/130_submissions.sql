-- Issue 16 (监控): the submission ledger, one row per department × source × period owed.
--
-- Derived, never edited: huiju/monitoring/ledger.py rebuilds a source's rows from ops.loads and
-- ops.feedback (refresh after each ingest run, backfill for everything), so it can always be
-- dropped and rebuilt exactly. Dates are Asia/Shanghai days.
create table if not exists ops.submissions (
    source_id          text not null,
    period             text not null,            -- 2026-12-04 (day), 2026-W49, 2026-11, 2026-Q4, or a cron period's first day
    department         text not null,
    dataset            text not null,
    period_kind        text not null check (period_kind in ('day', 'week', 'month', 'quarter', 'cron')),
    continuous         boolean not null,         -- rest/soap/frontdb: due when data stops arriving
    period_start       date not null,
    period_end         date not null,
    receive_from       date not null,            -- batches received (or corrected) on these days count for the period
    receive_to         date not null,
    due_date           date,                     -- null: the working-day calendar does not know the days (never guessed)
    late_after         date,                     -- due_date plus the grace period: the last day still on time
    as_of              date not null,            -- the day the status was derived for
    status             text not null
        check (status in ('pending', 'on_time', 'late', 'missing', 'held', 'unknown')),
    batches            integer not null default 0,   -- batches received (failed ones not counted)
    first_received_at  timestamptz,
    last_received_at   timestamptz,
    delivered_at       timestamptz,              -- the first batch not held: when usable data arrived
    rows_received      bigint not null default 0,
    rows_accepted      bigint not null default 0,
    rows_quarantined   bigint not null default 0,
    rows_held          bigint not null default 0,    -- rows of batches held over tolerance
    feedback_rows      bigint not null default 0,    -- problem rows sent back (问题数据反馈)
    feedback_sent_at   timestamptz,
    resubmitted_at     timestamptz,              -- the first corrected resubmission
    rows_corrected     bigint not null default 0,    -- feedback rows a resubmission corrected (≤ feedback_rows)
    refreshed_at       timestamptz not null default now(),
    primary key (source_id, period)
);
create index if not exists submissions_department on ops.submissions (department, period_end);
create index if not exists submissions_open on ops.submissions (status, late_after)
    where status in ('pending', 'missing', 'held', 'unknown');
