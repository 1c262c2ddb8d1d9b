-- History (SCD2) of the 行政处罚 credit records: every published version, valid from its
-- publication until the next version of the same decision was published (dbt_valid_to null: still
-- current) — the columns of a dbt snapshot, so "what was known on date X" is asked the same way:
--   where dbt_valid_from <= X and coalesce(dbt_valid_to, 'infinity') > X
-- Staging keeps every version of every decision, so the history is derived, not copied: a view that
-- costs a daily build nothing and is exact for versions published between two builds as well.
-- version_count is what it was while the version was current (the number of versions so far).
-- depends_on: {{ ref('stg_landing__admin_penalties') }}
with versions as (
    {{ credit_penalty_versions() | indent(4) }}
),

final as (
    select
        {{ credit_penalty_items() }},
        origin,
        source_id,
        load_id,
        source_row_no,
        published_at,
        first_published_at,
        version_count - version_rank + 1 as version_count,
        md5(load_id || '|' || source_row_no::text) as dbt_scd_id,
        published_at as dbt_updated_at,
        published_at as dbt_valid_from,
        superseded_at as dbt_valid_to
    from versions
)

select * from final
