-- 社会保险扩面 per district for the reports, as of an instant (macros/analysis.sql): the coverage the
-- platform's 户籍 and 参保 data gave by then — the latest versions published by the instant, working
-- age counted on the day of the latest of them (as_of_date) — with the rules of
-- thematic_social_insurance_coverage (macros/social_insurance.sql), so a report for a past period rebuilt
-- later gives the same numbers. Unset (now), it equals the theme. The district's full name is the
-- national division list's.
-- depends_on: {{ ref('stg_landing__household_registrations') }}, {{ ref('stg_landing__social_insurance_enrollments') }}
with

{{ social_insurance_coverage_ctes(published_by=analysis_as_of()) }},

final as (
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
    from coverage
    left join {{ ref('basic_spatial_division') }} as divisions on coverage.region_code = divisions.division_code
)

select * from final
