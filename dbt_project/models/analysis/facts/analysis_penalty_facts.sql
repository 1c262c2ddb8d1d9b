-- 行政处罚统计事实: every published version of every 行政处罚 decision, valid from its publication until
-- the next version of the decision was published, with the dimensions the statistics group by —
-- decision month, district (the USCC's region part, or a natural person's ID region part, when the
-- national division list knows it), department (行业主管部门), authority, 处罚类别 (the first listed),
-- party type — and no identifier of the party. The views of this layer read it as of an instant
-- (macros/analysis.sql). Incremental: the decisions with a version published since the last build are
-- recomputed whole (every version's version_until can move), as credit_admin_penalty does.
with versions as (
    {{ decision_versions('stg_landing__admin_penalties',
        "decision_no in (" ~ new_decisions('published_at') ~ ")" if is_incremental() else none) | indent(4) }}
),

final as (
    {{ decision_facts("btrim(split_part(versions.penalty_type, ';', 1))", 'penalty_type', 'fine_amount_wan')
       | indent(4) }}
)

select * from final
