-- 社会组织登记 (民政局), renamed and cast; every version kept. Incremental by batch.
{{ config(indexes=landing_staging_indexes(['uscc'])) }}

with

received as (
    {{ published_rows('social_org_registration', [
        'uscc', 'org_code', 'org_name', 'org_type', 'legal_rep', 'legal_rep_id_no',
        'registered_capital_wan', 'established_date', 'status', 'business_scope', 'supervisor',
        'authority'
    ]) | indent(4) }}
),

renamed as (
    select
        ops.normalise_code(uscc) as uscc,
        ops.normalise_code(replace(org_code, '-', '')) as org_code,
        ops.normalise_text(org_name) as org_name,
        ops.normalise_text(org_type) as org_type,
        ops.normalise_text(legal_rep) as legal_rep,
        ops.normalise_code(legal_rep_id_no) as legal_rep_id_no,
        ops.parse_number_cn(registered_capital_wan) as registered_capital_wan,
        ops.parse_date_cn(established_date, serial_epoch) as established_date,
        ops.normalise_text(status) as registration_status,
        ops.normalise_text(business_scope) as business_scope,
        ops.normalise_text(supervisor) as supervisor,
        ops.normalise_text(authority) as authority,
        {{ landing_lineage_columns() }}
    from received
)

select * from renamed
