-- 空间地理基础库: the national administrative divisions (seed basic_admin_division, GB/T 2260 from
-- the pinned python-stdnum, huiju/divisions.py; historical codes kept) with their parent's name and
-- the city they belong to, so other layers can roll a region code up. A view.
{{ config(materialized='view_if_changed') }}

with divisions as (
    select * from {{ ref('basic_admin_division') }}
)

select
    divisions.division_code,
    divisions.division_name,
    divisions.division_level,
    divisions.parent_code,
    divisions.is_current,
    parent.division_name as parent_name,
    case divisions.division_level
        when 'city' then divisions.division_code
        when 'district' then divisions.parent_code
    end as city_code,
    case divisions.division_level
        when 'province' then divisions.division_name
        when 'city' then parent.division_name || divisions.division_name
        -- a 市辖区 / 县 placeholder of a municipality is not part of a district's name
        else
            coalesce(grandparent.division_name, '')
            || coalesce(nullif(nullif(parent.division_name, '市辖区'), '县'), '')
            || divisions.division_name
    end as full_name
from divisions
left join divisions as parent on divisions.parent_code = parent.division_code
left join divisions as grandparent on parent.parent_code = grandparent.division_code
