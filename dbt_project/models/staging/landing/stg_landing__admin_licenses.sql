-- 行政许可 (双公示 v2) from every department that grants licences, renamed and cast; every version
-- of a decision kept (credit_admin_license takes the latest). Incremental by batch.
{{ config(indexes=landing_staging_indexes(['decision_no'])) }}

with

received as (
    {{ published_rows('admin_license', [
        'party_name', 'party_type', 'uscc', 'legal_rep', 'legal_rep_id_no', 'decision_no',
        'license_category', 'certificate_name', 'license_no', 'license_content', 'decision_date',
        'valid_from', 'valid_to', 'authority', 'authority_uscc'
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
        ops.normalise_text(license_category) as license_category,
        ops.normalise_text(certificate_name) as certificate_name,
        ops.normalise_text(license_no) as license_no,
        ops.normalise_text(license_content) as license_content,
        ops.parse_date_cn(decision_date, serial_epoch) as decision_date,
        ops.parse_date_cn(valid_from, serial_epoch) as valid_from,
        ops.parse_date_cn(valid_to, serial_epoch) as valid_to,
        ops.normalise_text(authority) as authority,
        ops.normalise_code(authority_uscc) as authority_uscc,
        {{ landing_lineage_columns() }}
    from received
)

select * from renamed
