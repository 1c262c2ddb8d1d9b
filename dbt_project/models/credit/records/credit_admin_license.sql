-- 行政许可 (双公示 v2), one row per 行政许可决定文书号: the version from the latest published batch
-- (a correction replaces the record it corrects), with the codes of 行政相对人类别 and 许可类别.
--
-- 公示截止期 (publish_until), the withdrawal rule: a licence is publicised while it is in force,
-- i.e. until its 有效期至 (inclusive); a licence without one (长期有效) is publicised for three years
-- from its 许可决定日期. The credit views decide is_publishable from it on the day they are read.
-- The province's backflow (省回流) of a decision a city department sent is the same record: left out
-- (macros/credit_records.sql: city_first_versions); origin says 本地 or 省回流.
-- Incremental: decisions with a version published since the last run, each from all its versions.
-- depends_on: {{ ref('stg_landing__admin_licenses') }}
with versions as (
    {%- set new_versions = none %}
    {%- if is_incremental() %}
    {%- set new_versions -%}
        decision_no in (
            select new_versions.decision_no
            from {{ ref('stg_landing__admin_licenses') }} as new_versions
            where new_versions.published_at > {{ watermark('published_at') }}
        )
    {%- endset %}
    {%- endif %}
    {{ city_first_versions('stg_landing__admin_licenses', new_versions) | indent(4) }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by decision_no order by published_at desc, load_id desc, source_row_no desc
        ) as version_rank,
        count(*) over (partition by decision_no) as version_count,
        min(published_at) over (partition by decision_no) as first_published_at
    from versions
),

final as (
    select
        ranked.decision_no,
        ranked.party_name,
        ranked.party_type,
        party_types.party_type_code,
        ranked.uscc,
        ranked.legal_rep,
        ranked.legal_rep_id_no,
        ranked.license_category,
        coalesce(categories.license_category_code, '9') as license_category_code,
        ranked.certificate_name,
        ranked.license_no,
        ranked.license_content,
        ranked.decision_date,
        ranked.valid_from,
        ranked.valid_to,
        coalesce(ranked.valid_to, (ranked.decision_date + interval '3 years')::date) as publish_until,
        ranked.authority,
        ranked.authority_uscc,
        ranked.source_department,
        precedence.department_name as source_department_name,
        {{ record_origin('ranked.origin') }} as origin,
        ranked.source_id,
        ranked.load_id,
        ranked.source_row_no,
        ranked.published_at,
        ranked.first_published_at,
        ranked.version_count::integer as version_count
    from ranked
    left join {{ ref('code_party_type') }} as party_types on ranked.party_type = party_types.party_type
    left join {{ ref('code_license_category') }} as categories on ranked.license_category = categories.license_category
    left join {{ ref('code_source_precedence') }} as precedence on ranked.source_department = precedence.department
    where ranked.version_rank = 1
)

select * from final
