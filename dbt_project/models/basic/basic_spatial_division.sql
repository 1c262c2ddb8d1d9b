-- 空间地理基础库: the administrative divisions (seed basic_admin_division, GB/T 2260) with their
-- parent's name and the city they belong to, so other layers can roll a region code up. A view.
{{ config(materialized='view_if_changed') }}

with divisions as (
    select * from {{ ref('basic_admin_division') }}
)

select
    divisions.division_code,
    divisions.division_name,
    divisions.division_level,
    divisions.parent_code,
    parent.division_name as parent_name,
    case divisions.division_level
        when 'city' then divisions.division_code
        when 'district' then divisions.parent_code
    end as city_code,
    case divisions.division_level
        when 'province' then divisions.division_name
        when 'city' then parent.division_name || divisions.division_name
        else coalesce(grandparent.division_name, '') || coalesce(parent.division_name, '') || divisions.division_name
    end as full_name
from divisions
left join divisions as parent on divisions.parent_code = parent.division_code
left join divisions as grandparent on parent.parent_code = grandparent.division_code
