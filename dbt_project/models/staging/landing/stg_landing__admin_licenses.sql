-- 行政许可 (双公示 v2) from every department that grants licences, renamed and cast; every version
-- of a decision kept (credit_admin_license takes the latest). Incremental by batch.
{{ config(indexes=landing_staging_indexes(['decision_no'])) }}

{{ landing_staging_model(
    'admin_license',
    fields=[
        'decision_no', 'party_name', 'party_type', 'uscc', 'legal_rep', 'legal_rep_id_no', 'license_category',
        'certificate_name', 'license_no', 'license_content', 'decision_date', 'valid_from', 'valid_to',
        'authority', 'authority_uscc'
    ],
    trimmed=['decision_no'],
    codes=['uscc', 'legal_rep_id_no', 'authority_uscc'],
    dates=['decision_date', 'valid_from', 'valid_to'],
) }}
