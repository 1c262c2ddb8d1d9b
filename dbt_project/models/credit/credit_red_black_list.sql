-- 红黑名单, one row per 名单编号: the latest version of each entry. An entry is in force from its
-- 列入日期 until it is removed (移出日期) or its 有效期至 passes, whichever is first; is_in_force
-- is decided on the day the view is read, so an entry leaves the publishable set without a rebuild.
-- A view: the lists are small next to the penalties and licences.
with latest as (
    {{ latest_versions('stg_landing__credit_list_entries', ['entry_no']) }}
),

final as (
    select
        latest.entry_no,
        latest.list_kind,
        latest.list_name,
        latest.subject_name,
        latest.subject_type,
        party_types.party_type_code as subject_type_code,
        latest.uscc,
        latest.legal_rep,
        latest.id_number,
        latest.reason,
        latest.listed_date,
        latest.valid_until,
        latest.removed_date,
        least(latest.valid_until, latest.removed_date) as publish_until,
        latest.removed_date is null and {{ is_publishable('latest.valid_until') }} as is_in_force,
        latest.listing_authority,
        latest.source_department,
        latest.load_id,
        latest.source_row_no,
        latest.published_at
    from latest
    left join {{ ref('code_party_type') }} as party_types on latest.subject_type = party_types.party_type
)

select * from final
