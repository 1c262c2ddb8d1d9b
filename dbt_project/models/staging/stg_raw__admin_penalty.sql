-- 行政处罚 from every department, cast to business types: published batches only, quarantined
-- rows left out, and for each decision number the version from the latest published batch.
with loads as (
    select load_id, source_id, department, published_at
    from {{ source('ops', 'loads') }}
    where status = 'published'
),

received as (
    select raw.*
    from {{ source('raw', 'admin_penalty') }} as raw
    where not exists (
        select 1 from {{ source('quarantine', 'rows') }} as q
        where q.load_id = raw._load_id and q.row_no = raw._row_no
    )
),

typed as (
    select
        btrim(received.decision_no) as decision_no,
        btrim(received.party_name) as party_name,
        btrim(received.party_type) as party_type,
        nullif(upper(btrim(received.uscc)), '') as uscc,
        nullif(btrim(received.legal_rep), '') as legal_rep,
        nullif(upper(btrim(received.legal_rep_id_no)), '') as legal_rep_id_no,
        btrim(received.penalty_type) as penalty_type,
        nullif(btrim(received.penalty_content), '') as penalty_content,
        ops.parse_number(received.fine_amount_wan) as fine_amount_wan,
        ops.parse_date(received.decision_date) as decision_date,
        ops.parse_date(received.publish_until) as publish_until,
        btrim(received.authority) as authority,
        nullif(upper(btrim(received.authority_uscc)), '') as authority_uscc,
        loads.department as source_department,
        loads.source_id,
        received._load_id as load_id,
        received._row_no as source_row_no,
        loads.published_at
    from received
    inner join loads on loads.load_id = received._load_id
),

latest as (
    select
        *,
        row_number() over (
            partition by decision_no order by published_at desc, load_id desc, source_row_no desc
        ) as version_rank
    from typed
)

select
    decision_no,
    party_name,
    party_type,
    uscc,
    legal_rep,
    legal_rep_id_no,
    penalty_type,
    penalty_content,
    fine_amount_wan,
    decision_date,
    publish_until,
    authority,
    authority_uscc,
    source_department,
    source_id,
    load_id,
    source_row_no,
    published_at
from latest
where version_rank = 1
