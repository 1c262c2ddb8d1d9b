-- 红黑名单 (发改委), renamed and cast; every version of an entry kept (a removal arrives as a new
-- version with 移出日期). Incremental by batch.
{{ config(indexes=landing_staging_indexes(['entry_no'])) }}

with

received as (
    {{ published_rows('credit_list', [
        'entry_no', 'list_kind', 'list_name', 'subject_name', 'subject_type', 'uscc', 'legal_rep',
        'id_number', 'reason', 'listed_date', 'valid_until', 'removed_date', 'listing_authority'
    ]) | indent(4) }}
),

renamed as (
    select
        btrim(entry_no) as entry_no,
        ops.normalise_text(list_kind) as list_kind,
        ops.normalise_text(list_name) as list_name,
        ops.normalise_text(subject_name) as subject_name,
        ops.normalise_text(subject_type) as subject_type,
        ops.normalise_code(uscc) as uscc,
        ops.normalise_text(legal_rep) as legal_rep,
        ops.normalise_code(id_number) as id_number,
        ops.normalise_text(reason) as reason,
        ops.parse_date_cn(listed_date, serial_epoch) as listed_date,
        ops.parse_date_cn(valid_until, serial_epoch) as valid_until,
        ops.parse_date_cn(removed_date, serial_epoch) as removed_date,
        ops.normalise_text(listing_authority) as listing_authority,
        {{ landing_lineage_columns() }}
    from received
)

select * from renamed
