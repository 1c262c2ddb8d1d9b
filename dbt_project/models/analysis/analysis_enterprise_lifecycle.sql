-- 企业全生命周期 (per month and district): enterprises founded (设立, by 成立日期), closed (注销) and
-- revoked (吊销) (by 注销/吊销日期), from each enterprise's latest registration published by the as-of
-- instant (macros/analysis.sql). The district is the registration's own region code when the national
-- division list knows it, else the USCC's region part, else the district its address names
-- (division_of_address), else 000000 未知地区.
with

versions as (
    {{ latest_versions('stg_landing__enterprise_registrations', ['uscc'],
                       'uscc is not null and published_at <= ' ~ analysis_as_of()) | indent(4) }}
),

enterprises as (
    select
        versions.established_date,
        versions.registration_status,
        versions.closed_date,
        coalesce(
            by_code.division_code,
            by_uscc.division_code,
            -- coalesce stops at the first value: the address is read only when both codes fail
            {{ division_of_address('versions.address') }}
        ) as region_code
    from versions
    left join {{ ref('basic_admin_division') }} as by_code on versions.region_code = by_code.division_code
    left join {{ ref('basic_admin_division') }} as by_uscc on substr(versions.uscc, 3, 6) = by_uscc.division_code
),

events as (
    select
        date_trunc('month', established_date)::date as stat_month,
        region_code,
        1 as founded,
        0 as closed,
        0 as revoked
    from enterprises
    where established_date is not null
    union all
    select
        date_trunc('month', closed_date)::date as stat_month,
        region_code,
        0 as founded,
        (registration_status = '注销')::integer as closed,
        (registration_status = '吊销')::integer as revoked
    from enterprises
    where closed_date is not null and registration_status in ('注销', '吊销')
),

final as (
    select
        events.stat_month,
        coalesce(events.region_code, '000000') as region_code,
        coalesce(divisions.full_name, '未知地区') as region_name,
        sum(events.founded)::integer as founded_count,
        sum(events.closed)::integer as closed_count,
        sum(events.revoked)::integer as revoked_count
    from events
    left join {{ ref('basic_spatial_division') }} as divisions on events.region_code = divisions.division_code
    group by events.stat_month, events.region_code, divisions.full_name
)

select * from final
