-- 红黑名单 (发改委), renamed and cast; every version of an entry kept (a removal arrives as a new
-- version with 移出日期). Incremental by batch.
{{ config(indexes=landing_staging_indexes(['entry_no'])) }}

{{ landing_staging_model(
    'credit_list',
    fields=[
        'entry_no', 'list_kind', 'list_name', 'subject_name', 'subject_type', 'uscc', 'legal_rep',
        'id_number', 'reason', 'listed_date', 'valid_until', 'removed_date', 'listing_authority'
    ],
    trimmed=['entry_no'],
    codes=['uscc', 'id_number'],
    dates=['listed_date', 'valid_until', 'removed_date'],
) }}
