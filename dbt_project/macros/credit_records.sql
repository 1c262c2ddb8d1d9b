{#-
    Published versions of 行政处罚 as credit records (双公示 v2): the national codes of 行政相对人类别
    and 处罚类别, and where each version stands among its decision's versions — version_rank 1 is
    the latest (a later batch corrects an earlier one), superseded_at is when the next one was
    published. credit_admin_penalty keeps the latest version of each decision; the history
    (credit_admin_penalty_history) keeps them all. `where` filters the staged versions, by whole
    decisions only (it must not split a decision's versions). The province's backflow (省回流) of a
    decision a city department sent is left out (city_first_versions): one record, of origin 本地.
-#}
{% macro credit_penalty_versions(where=none) -%}
    with versions as (
        {{ city_first_versions('stg_landing__admin_penalties', where) | indent(8) }}
    ),

    ranked as (
        select
            *,
            row_number() over latest_first as version_rank,
            count(*) over (partition by decision_no) as version_count,
            min(published_at) over (partition by decision_no) as first_published_at,
            lag(published_at) over latest_first as superseded_at
        from versions
        window latest_first as (partition by decision_no order by published_at desc, load_id desc, source_row_no desc)
    )

    select
        ranked.decision_no,
        ranked.party_name,
        ranked.party_type,
        party_types.party_type_code,
        ranked.uscc,
        ranked.legal_rep,
        ranked.legal_rep_id_no,
        ranked.penalty_type,
        (
            -- one code per 处罚类别; several are separated by ';' (99 其他 for one not in the code list)
            select string_agg(coalesce(penalty_types.penalty_type_code, '99'), ';' order by parts.position)
            from unnest(string_to_array(ranked.penalty_type, ';')) with ordinality as parts (name, position)
            left join {{ ref('code_penalty_type') }} as penalty_types on btrim(parts.name) = penalty_types.penalty_type
        ) as penalty_type_code,
        ranked.penalty_content,
        ranked.fine_amount_wan,
        ranked.decision_date,
        ranked.publish_until,
        ranked.authority,
        ranked.authority_uscc,
        ranked.source_department,
        {{ record_origin('ranked.origin') }} as origin,
        ranked.source_id,
        ranked.load_id,
        ranked.source_row_no,
        ranked.published_at,
        ranked.first_published_at,
        ranked.version_count::integer as version_count,
        ranked.version_rank::integer as version_rank,
        ranked.superseded_at
    from ranked
    left join {{ ref('code_party_type') }} as party_types on ranked.party_type = party_types.party_type
{%- endmacro %}


{#- The items that open every 双公示 credit record (decision and 行政相对人), in their order; a natural
    person's record has no 统一社会信用代码 or 法定代表人. -#}
{% macro credit_party_items(legal_person=true) -%}
    decision_no,
        party_name,
        party_type,
        party_type_code,
        {%- if legal_person %}
        uscc,
        legal_rep,
        legal_rep_id_no,
        {%- endif %}
{%- endmacro %}


{#- The 双公示 items of a penalty credit record, in the order every credit penalty model shows them. -#}
{% macro credit_penalty_items(legal_person=true) -%}
    {{ credit_party_items(legal_person) }}
        penalty_type,
        penalty_type_code,
        penalty_content,
        fine_amount_wan,
        decision_date,
        publish_until,
        authority,
        authority_uscc,
        source_department
{%- endmacro %}


{#- The 双公示 items of a licence credit record, in the order every credit licence model shows them. -#}
{% macro credit_license_items(legal_person=true) -%}
    {{ credit_party_items(legal_person) }}
    license_category,
    license_category_code,
    certificate_name,
    license_no,
    license_content,
    decision_date,
    valid_from,
    valid_to,
    publish_until,
    authority,
    authority_uscc,
    source_department,
    source_department_name
{%- endmacro %}


{#-
    credit_party_records(record_model, legal_person): a party's credit view, whole — the 双公示 records of
    ``record_model`` (credit_admin_penalty or credit_admin_license) whose 行政相对人 is a legal person
    (法人及非法人组织, 个体工商户) or, with legal_person=false, a natural person, with their items
    and whether each is publishable today, and its origin (本地, or 省回流: the pushes never send a 省回流
    record back up to the province, config/push_targets/). A view: a record past its 公示截止期 leaves the
    publishable set on that day, without waiting for a rebuild. It names the columns it reads (no
    ``select *``), so a column of the records it does not read can be added or dropped under it.
-#}
{% macro credit_party_records(record_model, legal_person=true) -%}
select
    {{ credit_penalty_items(legal_person) if record_model == 'credit_admin_penalty' else credit_license_items(legal_person) }},
    origin,
    {{ is_publishable('publish_until') }} as is_publishable,
    load_id,
    source_row_no,
    published_at
from {{ ref(record_model) }}
where party_type {{ "in ('法人及非法人组织', '个体工商户')" if legal_person else "= '自然人'" }}
{%- endmacro %}



{#-
    city_first_versions(staging_model, where): the staged versions of the decisions of ``staging_model``
    (``where`` filters by whole decisions), the province's backflow (省回流) deduplicated against the
    city's own records: a decision a city department sent keeps only its city versions (the same
    decision is one record, of origin 本地, whichever arrived first); a decision only the province sent
    keeps the province's versions (origin 省回流). Decided per decision from all its versions, so an
    incremental build that recomputes whole decisions equals a full refresh. Rows staged before origins
    were landed (origin null) are the city's own: there was no backflow then.
-#}
{% macro city_first_versions(staging_model, where=none) -%}
    select * from (
        select
            *,
            bool_or(origin is distinct from '省回流') over (partition by decision_no) as has_city_version
        from {{ ref(staging_model) }}
        {% if where %}where {{ where }}{% endif %}
    ) as staged
    where origin is distinct from '省回流' or not has_city_version
{%- endmacro %}


{#- A credit record's origin (本地 / 省回流) from its version's; rows staged before origins were landed are 本地. -#}
{% macro record_origin(column) -%}
    coalesce({{ column }}, '本地')
{%- endmacro %}
