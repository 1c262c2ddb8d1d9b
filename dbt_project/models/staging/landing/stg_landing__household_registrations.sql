-- 户籍 (公安局), renamed and cast; every version kept (a later batch with the same 公民身份号码 is a
-- change: the population base takes the latest). Incremental by batch.
{{ config(indexes=landing_staging_indexes(['id_number'])) }}

{{ landing_staging_model(
    'household_registration',
    fields=[
        'id_number', 'person_name', 'sex', 'birth_date', 'ethnicity', 'region_code', 'address',
        'household_kind', 'status'
    ],
    codes=['id_number', 'region_code'],
    dates=['birth_date'],
    renames={'sex': 'gender', 'status': 'household_status'},
) }}
