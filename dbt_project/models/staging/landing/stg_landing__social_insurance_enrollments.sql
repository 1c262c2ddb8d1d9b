-- 社保参保 (人社局), renamed and cast; every version kept (key: unit, person, 险种). Incremental by batch.
{{ config(indexes=landing_staging_indexes(['id_number'])) }}

{{ landing_staging_model(
    'social_insurance',
    fields=[
        'unit_uscc', 'unit_name', 'person_name', 'id_number', 'insurance_type', 'start_date',
        'end_date', 'status', 'contribution_base'
    ],
    codes=['unit_uscc', 'id_number'],
    numbers=['contribution_base'],
    dates=['start_date', 'end_date'],
    renames={'status': 'insurance_status'},
) }}
