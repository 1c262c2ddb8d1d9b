-- Issue 18 (push_outbox_1pct): what a day's run reads is planned for the push state as it is, and is the day's.
--
-- A run that queues a large share of a target's records (the first one, a relation read whole again)
-- leaves ops.push_records and ops.push_outbox far from what the planner last sampled; until autovacuum
-- analyzes them — minutes later, or later still on a busy server — the next run's reads (the records
-- changed since the cursor joined with what the target was last sent, the records gone from a relation)
-- are planned for a table of a few rows and take seconds instead of a fraction. The push role does not own
-- these tables and PostgreSQL 16 has no grant for ANALYZE alone: this function, the owner's, analyzes the
-- two tables and nothing else (huiju.push.outbox.compute_due calls it).
create or replace function ops.analyze_push_state() returns void
    language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
    analyze ops.push_records;
    analyze ops.push_outbox;
end
$$;
revoke all on function ops.analyze_push_state() from public;
grant execute on function ops.analyze_push_state() to huiju_push;

-- When the last run read each relation (its transaction's start): the next reads every row published after
-- the newest it saw, and every row committed after it read (published at most huiju.push.outbox.CURSOR_OVERLAP
-- before that) — not the overlap before the newest row again, which after a first run that read a relation
-- published at one instant was the whole relation (huiju.push.outbox.read_since).
alter table ops.push_cursors add column if not exists read_at timestamptz;
