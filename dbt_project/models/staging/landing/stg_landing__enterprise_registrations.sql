-- 企业登记 (市场监管), renamed and cast; every version kept (a later batch with the same USCC is
-- a change of the registration: the basic layer takes the latest). Incremental by batch.
{{ config(indexes=landing_staging_indexes(['uscc'])) }}

{{ landing_staging_model(
    'enterprise_registration',
    fields=[
        'uscc', 'enterprise_name', 'enterprise_type', 'legal_rep', 'legal_rep_id_no',
        'registered_capital_wan', 'established_date', 'status', 'closed_date', 'address',
        'region_code', 'authority', 'industry_code'
    ],
    codes=['uscc', 'legal_rep_id_no', 'region_code', 'industry_code'],
    numbers=['registered_capital_wan'],
    dates=['established_date', 'closed_date'],
    renames={'status': 'registration_status'},
) }}
