-- 企业登记 (市场监管), renamed and cast; every version kept (a later batch with the same USCC is
-- a change of the registration: the basic layer takes the latest). Incremental by batch.
{{ config(indexes=landing_staging_indexes(['uscc'])) }}

with

received as (
    {{ published_rows('enterprise_registration', [
        'uscc', 'enterprise_name', 'enterprise_type', 'legal_rep', 'legal_rep_id_no',
        'registered_capital_wan', 'established_date', 'status', 'closed_date', 'address',
        'region_code', 'authority'
    ]) | indent(4) }}
),

renamed as (
    select
        ops.normalise_code(uscc) as uscc,
        ops.normalise_text(enterprise_name) as enterprise_name,
        ops.normalise_text(enterprise_type) as enterprise_type,
        ops.normalise_text(legal_rep) as legal_rep,
        ops.normalise_code(legal_rep_id_no) as legal_rep_id_no,
        ops.parse_number_cn(registered_capital_wan) as registered_capital_wan,
        ops.parse_date_cn(established_date, serial_epoch) as established_date,
        ops.normalise_text(status) as registration_status,
        ops.parse_date_cn(closed_date, serial_epoch) as closed_date,
        ops.normalise_text(address) as address,
        ops.normalise_code(region_code) as region_code,
        ops.normalise_text(authority) as authority,
        {{ landing_lineage_columns() }}
    from received
)

select * from renamed
