-- Channel outages and late notices (issue 16).
--
-- A circuit is what one outage takes down: the mail relay (circuit 'email') or one group robot
-- ('dingtalk:<connection>', 'wecom:<connection>'). After a few consecutive failures it opens: no
-- delivery through it is tried until reopen_at, then one is tried (a probe); a probe that fails
-- opens it again for twice as long (bounded). Deliveries through a circuit are also bounded per
-- minute (sent_in_window since window_started_at), so a backlog drains at a steady pace when the
-- channel comes back instead of all at once.
create table if not exists ops.notice_circuits (
    circuit              text primary key,
    consecutive_failures integer not null default 0,
    opened_at            timestamptz,            -- when it opened (null: closed)
    reopen_at            timestamptz,            -- no attempt before this while open
    cooldown             interval,               -- the current wait while open (doubles per failed probe)
    last_error           text,                   -- masked
    window_started_at    timestamptz,
    sent_in_window       integer not null default 0,
    updated_at           timestamptz not null default now()
);

-- A ladder of notices about one thing (a reminder, then 催报, then escalation for one obligation)
-- shares a topic; a higher rank supersedes a lower one. A delivery still pending when a notice of
-- higher rank in its topic reaches the same recipient is not sent late: superseded_by names it.
alter table ops.notices add column if not exists topic text;
alter table ops.notices add column if not exists rank integer not null default 0;
create index if not exists notices_topic on ops.notices (topic, rank) where topic is not null;
alter table ops.notice_deliveries add column if not exists superseded_by bigint references ops.notices (notice_id);
