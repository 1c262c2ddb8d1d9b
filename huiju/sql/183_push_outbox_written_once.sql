-- Issue 18 (push speed): an outbox row is written once, and settled in place.
--
-- A push run queues each row already in its batch (huiju.push.outbox.compute_due, batched): one insert
-- instead of an insert as 'due' and an update to 'batched'. Its receipt then changes only state, reason and
-- settled_at, which no index reads any more, so that update is a HOT update (the heap only, no index entry)
-- wherever the page has room, which the fillfactor keeps:
--
-- push_outbox_due       the rows still to cut into batches (a replay's): by batch_id is null — a row gets its
--                       batch when it leaves 'due' — instead of by state;
-- push_outbox_batch     only rows in a batch (those still to batch are found by push_outbox_due);
-- push_outbox_open      dropped: (target, deadline_date) of the rows due, batched or unknown, which no query
--                       could use (the 双公示 alert asks for refused rows too); the alert finds the days it
--                       looks at by push_outbox_deadline (a day's decisions, whatever their state).
drop index if exists ops.push_outbox_open;
create index if not exists push_outbox_deadline on ops.push_outbox (deadline_date) where deadline_date is not null;
drop index if exists ops.push_outbox_due;
create index if not exists push_outbox_due on ops.push_outbox (target, outbox_id) where batch_id is null;
drop index if exists ops.push_outbox_batch;
create index if not exists push_outbox_batch on ops.push_outbox (batch_id) where batch_id is not null;
-- Room on each page for its rows' settled versions (the receipt's update), so they stay on the page: at 60
-- 62% of push_100k's updates were HOT, at 50 95% (the heap is about twice its packed size: the price of
-- settling in place instead of writing four index entries a row again).
alter table ops.push_outbox set (fillfactor = 50);

-- Receipts are recorded in bulk (one COPY per batch). Their foreign keys checked each receipt row by a
-- trigger that locked the outbox row it names (FOR KEY SHARE: one more write of every outbox row) and the
-- batch's row; the sender writes receipts only for the rows and batch it just read, and neither is ever
-- deleted, so the keys are dropped. The index by outbox row keeps only the receipts a steward looks a row up
-- for (rejected, unknown): an accepted row says so itself (state, settled_at).
alter table ops.push_receipts drop constraint if exists push_receipts_batch_id_fkey;
alter table ops.push_receipts drop constraint if exists push_receipts_outbox_id_fkey;
drop index if exists ops.push_receipts_outbox;
create index if not exists push_receipts_outbox on ops.push_receipts (outbox_id) where outcome <> 'accepted';
