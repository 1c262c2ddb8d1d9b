-- 行政许可统计事实: every published version of every 行政许可 decision, valid from its publication until
-- the next version was published, with the dimensions the statistics group by (as
-- analysis_penalty_facts: decision month, district, department, authority, 许可类别, party type) and no
-- identifier of the party. Incremental by decision, like analysis_penalty_facts.
with versions as (
    {{ decision_versions('stg_landing__admin_licenses',
        "decision_no in (select decision_no from " ~ ref('stg_landing__admin_licenses')
        ~ " where published_at > " ~ watermark('published_at') ~ ")" if is_incremental() else none) | indent(4) }}
),

final as (
    {{ decision_facts('versions.license_category', 'license_category') | indent(4) }}
)

select * from final
