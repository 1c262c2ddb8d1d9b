-- 税务登记 (税务局), renamed and cast; every version kept. Incremental by batch.
{{ config(indexes=landing_staging_indexes(['uscc'])) }}

with

received as (
    {{ published_rows('tax_registration', [
        'uscc', 'taxpayer_name', 'taxpayer_kind', 'legal_rep', 'legal_rep_id_no', 'registration_date',
        'tax_status', 'credit_rating', 'contact_mobile', 'tax_authority'
    ]) | indent(4) }}
),

renamed as (
    select
        ops.normalise_code(uscc) as uscc,
        ops.normalise_text(taxpayer_name) as taxpayer_name,
        ops.normalise_text(taxpayer_kind) as taxpayer_kind,
        ops.normalise_text(legal_rep) as legal_rep,
        ops.normalise_code(legal_rep_id_no) as legal_rep_id_no,
        ops.parse_date_cn(registration_date, serial_epoch) as tax_registration_date,
        ops.normalise_text(tax_status) as tax_status,
        ops.normalise_code(credit_rating) as tax_credit_rating,
        ops.normalise_code(contact_mobile) as contact_mobile,
        ops.normalise_text(tax_authority) as tax_authority,
        {{ landing_lineage_columns() }}
    from received
)

select * from renamed
