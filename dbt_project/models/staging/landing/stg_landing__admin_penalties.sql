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

with

received as (
    {{ published_rows('admin_penalty', [
        'party_name', 'party_type', 'uscc', 'legal_rep', 'legal_rep_id_no', 'decision_no',
        'penalty_type', 'penalty_content', 'fine_amount_wan', 'decision_date', 'publish_until',
        'authority', 'authority_uscc'
    ]) | indent(4) }}
),

renamed as (
    select
        btrim(decision_no) as decision_no,
        ops.normalise_text(party_name) as party_name,
        ops.normalise_text(party_type) as party_type,
        ops.normalise_code(uscc) as uscc,
        ops.normalise_text(legal_rep) as legal_rep,
        ops.normalise_code(legal_rep_id_no) as legal_rep_id_no,
        ops.normalise_text(penalty_type) as penalty_type,
        ops.normalise_text(penalty_content) as penalty_content,
        ops.parse_number_cn(fine_amount_wan) as fine_amount_wan,
        ops.parse_date_cn(decision_date, serial_epoch) as decision_date,
        ops.parse_date_cn(publish_until, serial_epoch) as publish_until,
        ops.normalise_text(authority) as authority,
        ops.normalise_code(authority_uscc) as authority_uscc,
        {{ landing_lineage_columns() }}
    from received
)

select * from renamed
