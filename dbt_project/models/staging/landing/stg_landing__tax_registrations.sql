-- 税务登记 (税务局), renamed and cast; every version kept. Incremental by batch.
{{ config(indexes=landing_staging_indexes(['uscc'])) }}

{{ landing_staging_model(
    'tax_registration',
    fields=[
        'uscc', 'taxpayer_name', 'taxpayer_kind', 'legal_rep', 'legal_rep_id_no', 'registration_date',
        'tax_status', 'credit_rating', 'contact_mobile', 'tax_authority'
    ],
    codes=['uscc', 'legal_rep_id_no', 'credit_rating', 'contact_mobile'],
    dates=['registration_date'],
    renames={'registration_date': 'tax_registration_date', 'credit_rating': 'tax_credit_rating'},
) }}
