-- Issue 17: a department's latest batches (the stewards' dashboard's department page: the newest 200 of
-- ops.loads) by index, newest first, instead of a sequential scan of the whole ledger and a sort
-- (EXPLAIN ANALYZE on the 300-source benchmark: 50 ms over 47,000 batches, growing with every batch).
create index if not exists loads_department_received on ops.loads (department, received_at desc, load_id);
