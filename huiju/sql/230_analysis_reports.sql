-- 定时离线分析: the archive index of the reports (huiju/reports/delivery.py). One row per report and
-- period: the instant its numbers were read as of (set by its first run, reused by every rebuild, so a
-- report for a past period made again gives the same numbers), the archived workbook and charts (paths
-- under var/), and the notice that e-mails it (queued once: ops.notices.dedupe_key 'report:<id>:<period>').
create table if not exists ops.analysis_reports (
    report_id          text not null,
    period             text not null,
    title              text not null,
    as_of              timestamptz not null,
    first_generated_at timestamptz not null default now(),
    generated_at       timestamptz not null default now(),
    workbook           text not null,
    workbook_sha256    text not null,
    charts             text[] not null default '{}',
    notice_id          bigint references ops.notices (notice_id),
    primary key (report_id, period)
);
