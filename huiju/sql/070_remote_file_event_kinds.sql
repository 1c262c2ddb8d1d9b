-- Every problem on a file drop reaches the department as an ops.remote_file_events row, not only
-- the completeness ones: also a delivered file refused by its content (macro workbook, legacy
-- .xls, HTML renamed .xlsx, zip bomb, hostile XML, wrong format, unreadable), a download that
-- failed after every retry, and a server whose SSH host key is not the pinned one.
alter table ops.remote_file_events drop constraint if exists remote_file_events_kind_check;
alter table ops.remote_file_events add constraint remote_file_events_kind_check
    check (kind in ('stale_incomplete', 'marker_mismatch', 'unsafe_name', 'undecodable_name', 'orphan_marker',
                    'refused_file', 'transfer_failed', 'host_key_mismatch'));
