-- 行政处罚 (双公示 v2), one row per 行政处罚决定书文号: the version from the latest published batch
-- (a correction replaces the record it corrects), with the national codes of 行政相对人类别 and 处罚类别,
-- and its origin: 本地, or 省回流 for a decision only the province's backflow brought (one the city also
-- sent is the city's record).
-- Every version's record is built by macros/credit_records.sql (shared with the history).
-- Incremental: only decisions with a version published since the last run are recomputed, each
-- from all of its versions, so the result equals a full refresh.
with versions as (
    {{ credit_penalty_versions(
        "decision_no in (" ~ new_decisions('published_at') ~ ")" if is_incremental() else none) | indent(4) }}
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
        version_count
    from versions
    where version_rank = 1
)

select * from final
