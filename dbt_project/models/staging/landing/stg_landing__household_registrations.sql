-- 户籍 (公安局), renamed and cast; every version kept (a later batch with the same 公民身份号码 is a
-- change: the population base takes the latest). Incremental by batch.
{{ config(indexes=landing_staging_indexes(['id_number'])) }}

with

received as (
    {{ published_rows('household_registration', [
        'id_number', 'person_name', 'sex', 'birth_date', 'ethnicity', 'region_code', 'address',
        'household_kind', 'status'
    ]) | indent(4) }}
),

renamed as (
    select
        ops.normalise_code(id_number) as id_number,
        ops.normalise_text(person_name) as person_name,
        ops.normalise_text(sex) as gender,
        ops.parse_date_cn(birth_date, serial_epoch) as birth_date,
        ops.normalise_text(ethnicity) as ethnicity,
        ops.normalise_code(region_code) as region_code,
        ops.normalise_text(address) as address,
        ops.normalise_text(household_kind) as household_kind,
        ops.normalise_text(status) as household_status,
        {{ landing_lineage_columns() }}
    from received
)

select * from renamed
