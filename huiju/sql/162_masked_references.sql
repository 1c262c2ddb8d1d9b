-- Issue 15: ops.loads.reference and ops.repeats.reference (the name a department gave a batch: a file
-- name, a page, an extract) are read by people (notices, the portal's history, the monitor) and may
-- hold an ID or mobile number ("张三_110105194912310021.xlsx"). The landing stores them masked
-- (huiju.masking.mask_text); what was stored before is masked here by its SQL twin (150_mask_text.sql).
update ops.loads set reference = ops.mask_text(reference) where reference <> ops.mask_text(reference);

-- Two references that mask alike are one repeat now (its primary key): keep one.
delete from ops.repeats r using ops.repeats o
where r.source_id = o.source_id and r.sha256 = o.sha256
  and ops.mask_text(r.reference) = ops.mask_text(o.reference) and r.ctid > o.ctid;
update ops.repeats set reference = ops.mask_text(reference) where reference <> ops.mask_text(reference);
