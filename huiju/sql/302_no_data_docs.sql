-- Issue 17: Great Expectations' Data Docs are no longer built (their pages load assets from public CDNs,
-- which a government intranet cannot reach); the stewards' dashboard shows each batch's results from
-- ops.validation_results instead. A validation run has no Data Docs page to point to any more.
alter table ops.validation_runs drop column if exists docs_path;
