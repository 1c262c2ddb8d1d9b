-- The date system of an Excel batch (1899-12-30, or 1904-01-01 for the 1904 system), recorded by
-- validation, which reads date serials with it: dbt staging reads them the same way. NULL for
-- text formats, whose bare numbers are never taken for dates.
alter table ops.loads add column if not exists serial_epoch date;
