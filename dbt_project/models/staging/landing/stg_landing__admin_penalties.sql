-- 行政处罚 from every department, renamed and cast to business types: every row of every
-- published batch that passed validation (quarantined rows left out), each version of a decision
-- kept (a later batch with the same 决定书文号 is a correction; credit_admin_penalty picks the latest).
-- Incremental: a run reads only the batches published since the newest one already here. The
-- decision number stays as the key checks compare it (trimmed, not NFKC), so two numbers validation
-- tells apart are never merged here. The pre-hook keeps the watermark of this build's data tests
-- (macros/changed_by_this_build.sql).
{{ config(
    indexes=landing_staging_indexes(['decision_no']),
    pre_hook="{{ record_test_watermark() }}",
) }}

{{ landing_staging_model(
    'admin_penalty',
    fields=[
        'decision_no', 'party_name', 'party_type', 'uscc', 'legal_rep', 'legal_rep_id_no', 'penalty_type',
        'penalty_content', 'fine_amount_wan', 'decision_date', 'publish_until', 'authority', 'authority_uscc'
    ],
    trimmed=['decision_no'],
    codes=['uscc', 'legal_rep_id_no', 'authority_uscc'],
    numbers=['fine_amount_wan'],
    dates=['decision_date', 'publish_until'],
) }}
