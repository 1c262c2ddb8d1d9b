-- 社会保险扩面主题 (公安户籍 + 人社参保 + 空间地理): per 户籍地行政区划 (district), the registered
-- residents (户籍人口, status 正常) against those of them who pay social insurance (参保缴费) — what a
-- human resources and social security bureau plans its coverage drive (参保扩面) from:
--   * working age = 16 to 59 on the reference date as_of_date (the day, Beijing time, of the latest
--     batch of 户籍 or 参保 the table is built from), from the register's birth date;
--   * coverage_rate = insured working-age residents ÷ working-age residents; the uninsured
--     working-age residents are the drive's target (扩面对象);
--   * insured persons who are not registered residents of the city (外来参保人员: no 户籍 here, or
--     moved out: 迁出) are counted in the district of their employer (the USCC's region code, of the
--     employer of their latest-started contributing record), each once;
--   * residents whose 户籍 was cancelled on death (死亡注销) but who still pay are counted apart: a
--     case for the two bureaus to clear up.
-- Only the latest version of each 户籍 record and of each (单位, 人, 险种) record counts. The rules are
-- written once, in macros/social_insurance.sql, which the analysis layer also reads as of an instant.
--
-- Every row depends on the whole of both datasets, so the table is recomputed whole — but only by a
-- build that has a new 户籍 or 参保 batch for it (macros/registers.sql: changed_since_built); other
-- builds leave it as it is (a division renamed in seed basic_admin_division shows with the next such
-- batch, or at once with --full-refresh).
-- depends_on: {{ ref('stg_landing__household_registrations') }}, {{ ref('stg_landing__social_insurance_enrollments') }}
{%- set inputs = ['stg_landing__household_registrations', 'stg_landing__social_insurance_enrollments'] %}
{{ config(
    unique_key='region_code',
    indexes=[{'columns': ['region_code'], 'unique': True}, {'columns': ['last_published_at']}],
    pre_hook="{{ delete_all_if_changed(['stg_landing__household_registrations', 'stg_landing__social_insurance_enrollments']) }}",
) }}

with

{{ social_insurance_coverage_ctes() }},

final as (
    select * from coverage
    where {{ changed_since_built(inputs) }}
)

select * from final
