-- 社保参保 (人社局), renamed and cast; every version kept (key: unit, person, 险种). Incremental by batch.
{{ config(indexes=landing_staging_indexes(['id_number'])) }}

with

received as (
    {{ published_rows('social_insurance', [
        'unit_uscc', 'unit_name', 'person_name', 'id_number', 'insurance_type', 'start_date',
        'end_date', 'status', 'contribution_base'
    ]) | indent(4) }}
),

renamed as (
    select
        ops.normalise_code(unit_uscc) as unit_uscc,
        ops.normalise_text(unit_name) as unit_name,
        ops.normalise_text(person_name) as person_name,
        ops.normalise_code(id_number) as id_number,
        ops.normalise_text(insurance_type) as insurance_type,
        ops.parse_date_cn(start_date, serial_epoch) as start_date,
        ops.parse_date_cn(end_date, serial_epoch) as end_date,
        ops.normalise_text(status) as insurance_status,
        ops.parse_number_cn(contribution_base) as contribution_base,
        {{ landing_lineage_columns() }}
    from received
)

select * from renamed
