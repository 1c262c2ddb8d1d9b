-- 社会组织登记 (民政局), renamed and cast; every version kept. Incremental by batch. The 组织机构代码
-- is compared without its hyphen (XXXXXXXX-X and XXXXXXXXX are one code).
{{ config(indexes=landing_staging_indexes(['uscc'])) }}

{{ landing_staging_model(
    'social_org_registration',
    fields=[
        'uscc', 'org_code', 'org_name', 'org_type', 'legal_rep', 'legal_rep_id_no',
        'registered_capital_wan', 'established_date', 'status', 'business_scope', 'supervisor',
        'authority'
    ],
    codes=['uscc', 'legal_rep_id_no'],
    numbers=['registered_capital_wan'],
    dates=['established_date'],
    renames={'status': 'registration_status'},
    expressions={'org_code': "ops.normalise_code(replace(org_code, '-', ''))"},
) }}
