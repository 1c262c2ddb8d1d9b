-- 社会保险扩面 per district for the reports: thematic_social_insurance_coverage (working-age registered
-- residents and how many of them pay) with the district's full name from the national division list.
-- Not read as of an instant: the theme is rebuilt from the latest 户籍 and 参保 data (its as_of_date
-- says when that was), so a report shows the coverage of its build, with that date.
select
    coverage.region_code,
    coalesce(divisions.full_name, coverage.region_name, '未知地区') as region_name,
    coverage.as_of_date,
    coverage.registered_residents,
    coverage.working_age_residents,
    coverage.insured_working_age_residents,
    coverage.uninsured_working_age_residents,
    coverage.coverage_rate,
    coverage.non_resident_insured
from {{ ref('thematic_social_insurance_coverage') }} as coverage
left join {{ ref('basic_spatial_division') }} as divisions on coverage.region_code = divisions.division_code
