-- Issue 18 (push_100k): the sender's reads are planned for the payloads as they are.
--
-- A push run that queued a large share of a target's records (the first one, a relation read whole
-- again) has just written as many payloads (push_private.payloads). Until autovacuum analyzes the table,
-- the sender's read of each batch (its outbox rows joined with their payloads by content hash) can be
-- planned for the table the last analyze saw — empty after a pruning — as a hash join over a scan of
-- every payload, once per batch: push_100k's sends took 49 s instead of 4 (cProfile, bench database).
-- ops.analyze_push_state(), which huiju.push.outbox.compute_due calls after such a run, analyzes the
-- payloads too.
create or replace function ops.analyze_push_state() returns void
    language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
    analyze ops.push_records;
    analyze ops.push_outbox;
    analyze push_private.payloads;
end
$$;
revoke all on function ops.analyze_push_state() from public;
grant execute on function ops.analyze_push_state() to huiju_push;
