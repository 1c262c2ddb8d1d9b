-- Issue 18: what is due at a push target, computed from what changed since the last run, not from everything.
--
-- ops.push_records.changed_at  the relation row's changed column (published_at: the version's publication
--                              time) when the record was last rendered for the target. A row read again
--                              (the cursor's overlap, a version published twice) whose changed column is
--                              the one recorded is skipped in the query, before any payload is rendered:
--                              a new version of a record always comes with a new publication time.
-- ops.push_cursors.rendering   a hash of how the target renders the relation (its item codes, masking, key,
--                              backflow rule): when the configuration changes, the next run reads the
--                              relation whole again, so every payload that changed with it is queued.
alter table ops.push_records add column if not exists changed_at timestamptz;
alter table ops.push_cursors add column if not exists rendering text;
