{#-
    社会保险扩面 per 户籍地 district, as CTEs ending in `coverage` (one row per district): what
    thematic_social_insurance_coverage holds (every version published so far) and, with `published_by`
    (an instant's SQL expression: analysis_as_of()), what the platform had published by then — the
    latest 户籍 and 参保 versions published by the instant, working age counted on the day of the latest
    of them (as_of_date) — so a report for a past period reads the coverage of its period again, however
    much has been published since (analysis_social_insurance_coverage). The rules are the theme's
    (models/thematic/thematic_social_insurance_coverage.sql says them), written once here.
-#}
{% macro social_insurance_coverage_ctes(published_by=none) -%}
    {%- set published = (' and published_at <= ' ~ published_by) if published_by else '' -%}
residents as (
    {{ latest_versions('stg_landing__household_registrations', ['id_number'], 'id_number is not null' ~ published) }}
),

insured as (
    {{ latest_versions('stg_landing__social_insurance_enrollments', ['unit_uscc', 'id_number', 'insurance_type'],
                       'id_number is not null' ~ published) }}
),

reference as (
    select
        max(published_at) as last_published_at,
        (max(published_at) at time zone 'Asia/Shanghai')::date as as_of_date
    from (
        select published_at from residents
        union all
        select published_at from insured
    ) as published
),

contributing as (
    -- per person: the 险种 paid, and the employer of the latest-started contributing record
    select
        id_number,
        array_agg(distinct insurance_type) as insurance_types,
        (array_agg(
            unit_uscc order by
                start_date desc nulls last, published_at desc, load_id desc,
                source_row_no desc
        ))[1] as latest_unit_uscc
    from insured
    where insurance_status = '参保缴费'
    group by id_number
),

people as (
    select
        residents.region_code,
        residents.household_status,
        residents.birth_date > reference.as_of_date - interval '60 years'
        and residents.birth_date <= reference.as_of_date - interval '16 years' as is_working_age,
        contributing.insurance_types
    from residents
    cross join reference
    left join contributing on residents.id_number = contributing.id_number
),

by_residence as (
    select
        region_code,
        count(*) filter (where household_status = '正常')::integer as registered_residents,
        count(*) filter (where household_status = '正常' and is_working_age)::integer as working_age_residents,
        count(*) filter (where household_status = '正常' and insurance_types is not null)::integer
            as insured_residents,
        count(*) filter (where household_status = '正常' and is_working_age and insurance_types is not null)::integer
            as insured_working_age_residents,
        {%- for column, insurance_type in [
            ('pension', '企业职工基本养老保险'), ('medical', '职工基本医疗保险'), ('unemployment', '失业保险'),
            ('injury', '工伤保险'), ('maternity', '生育保险')] %}
        count(*) filter (where household_status = '正常' and '{{ insurance_type }}' = any(insurance_types))::integer
            as {{ column }}_insured_residents,
        {%- endfor %}
        count(*) filter (where household_status = '死亡注销' and insurance_types is not null)::integer
            as deceased_contributing
    from people
    where region_code is not null
    group by region_code
),

non_residents as (
    select
        substr(contributing.latest_unit_uscc, 3, 6) as region_code,
        count(*)::integer as non_resident_insured
    from contributing
    where
        contributing.latest_unit_uscc is not null
        and not exists (
            select 1 from residents
            where residents.id_number = contributing.id_number and residents.household_status in ('正常', '死亡注销')
        )
    group by substr(contributing.latest_unit_uscc, 3, 6)
),

regions as (
    select by_residence.region_code from by_residence
    union
    select non_residents.region_code from non_residents
),

coverage as (
    select
        regions.region_code,
        division.division_name as region_name,
        reference.as_of_date,
        coalesce(by_residence.registered_residents, 0) as registered_residents,
        coalesce(by_residence.working_age_residents, 0) as working_age_residents,
        coalesce(by_residence.insured_residents, 0) as insured_residents,
        coalesce(by_residence.insured_working_age_residents, 0) as insured_working_age_residents,
        coalesce(by_residence.working_age_residents, 0) - coalesce(by_residence.insured_working_age_residents, 0)
            as uninsured_working_age_residents,
        round(
            by_residence.insured_working_age_residents::numeric
            / nullif(by_residence.working_age_residents, 0), 4
        ) as coverage_rate,
        {%- for column in ['pension', 'medical', 'unemployment', 'injury', 'maternity'] %}
        coalesce(by_residence.{{ column }}_insured_residents, 0) as {{ column }}_insured_residents,
        {%- endfor %}
        coalesce(non_residents.non_resident_insured, 0) as non_resident_insured,
        coalesce(by_residence.deceased_contributing, 0) as deceased_contributing,
        reference.last_published_at
    from regions
    cross join reference
    left join by_residence on regions.region_code = by_residence.region_code
    left join non_residents on regions.region_code = non_residents.region_code
    left join {{ ref('basic_admin_division') }} as division on regions.region_code = division.division_code
)
{%- endmacro %}
