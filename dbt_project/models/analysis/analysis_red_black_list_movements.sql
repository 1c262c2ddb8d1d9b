-- 红黑名单变动: per month, list kind (红名单 / 黑名单), list and authority, the entries put on the list
-- (列入, by 列入日期) and taken off it (移出, by 移出日期), from each entry's latest version published by
-- the as-of instant (macros/analysis.sql).
with

entries as (
    {{ latest_versions('stg_landing__credit_list_entries', ['entry_no'],
                       'published_at <= ' ~ analysis_as_of()) | indent(4) }}
),

movements as (
    select
        date_trunc('month', listed_date)::date as stat_month,
        coalesce(list_kind, '未填写') as list_kind,
        coalesce(list_name, '未填写') as list_name,
        coalesce(listing_authority, '未填写') as listing_authority,
        1 as listed,
        0 as removed
    from entries
    where listed_date is not null
    union all
    select
        date_trunc('month', removed_date)::date as stat_month,
        coalesce(list_kind, '未填写') as list_kind,
        coalesce(list_name, '未填写') as list_name,
        coalesce(listing_authority, '未填写') as listing_authority,
        0 as listed,
        1 as removed
    from entries
    where removed_date is not null
),

final as (
    select
        stat_month,
        list_kind,
        list_name,
        listing_authority,
        sum(listed)::integer as listed_count,
        sum(removed)::integer as removed_count
    from movements
    group by stat_month, list_kind, list_name, listing_authority
)

select * from final
