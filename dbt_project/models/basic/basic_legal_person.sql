-- 法人基础库: one row per 统一社会信用代码, merged from what every department reports about it —
-- the registers (企业登记 by 市场监管, 社会组织登记 by 民政, 税务登记 by 税务), the parties of
-- penalties and licences (法人及非法人组织, 个体工商户) and the authorities (机关) that issued
-- penalties (处罚机关) or granted licences (许可机关).
--
-- Precedence rule (documented with seed code_source_precedence): each attribute comes from the
-- contribution that has a value for it and ranks first by
--   1. kind: a registration (企业登记, 社会组织登记) before a tax registration (税务登记) before a
--      party named in a decision (行政处罚, 行政许可) — the registration authority is authoritative;
--   2. department precedence (seed: 1 = 市场监督管理局 … unlisted departments last);
--   3. the latest date (成立日期, 登记日期 or 决定日期), then the latest published batch, then the record key.
-- Registration attributes (登记状态, 成立日期, 注册资本 …) come from the registers only, 纳税信用等级
-- from the tax register. An authority (机关) is named as on its own latest decision — a penalty or a
-- licence, whichever was decided last (then published last, then the larger decision number) —
-- which comes before what others call it when it is also a party; its department is the one
-- reporting that decision, its first and last dates span all its decisions of both kinds.
--
-- Incremental: only the USCCs that newly published data names (any version), or that rows withdrawn at
-- the source named (a registration a department deleted), are recomputed, each from all its data
-- (macros/incremental.sql, macros/registers.sql, macros/withdrawals.sql). Parties are aggregated over their
-- own records; an authority, which signs a large share of all decisions, is read through indexes
-- (latest decision, first and last dates, of penalties and of licences) so a day's cost does not
-- grow with its history.
-- depends_on: {{ ref('stg_landing__admin_penalties') }}
-- depends_on: {{ ref('stg_landing__enterprise_registrations') }}, {{ ref('stg_landing__tax_registrations') }}
-- depends_on: {{ ref('stg_landing__social_org_registrations') }}
-- depends_on: {{ ref('stg_landing__social_insurance_enrollments') }}
-- depends_on: {{ ref('stg_landing__admin_licenses') }}, {{ ref('stg_landing__credit_list_entries') }}
{{ config(
    unique_key='uscc',
    indexes=[{'columns': ['uscc'], 'unique': True}, {'columns': ['last_published_at']}],
    pre_hook="{{ delete_touched_uscc() }}",
) }}

{%- set order = "kind_rank, precedence, event_date desc nulls last, published_at desc, record_key desc" %}

with
{% if is_incremental() -%}
touched as (
    {{ touched_uscc() }}
),
{%- endif %}

{%- set in_touched = "and uscc in (select touched.touched_key from touched)" if is_incremental() else "" %}

contributions as (
    {%- for decisions in ['credit_admin_penalty', 'credit_admin_license'] %}
    select
        uscc,
        party_name as contributed_name,
        party_type,
        legal_rep,
        source_department,
        3 as kind_rank,
        decision_date as event_date,
        published_at,
        decision_no as record_key,
        null::text as enterprise_type,
        null::text as registration_status,
        null::date as established_date,
        null::numeric as registered_capital_wan,
        null::text as address,
        null::text as tax_status,
        null::text as tax_credit_rating
    from {{ ref(decisions) }}
    where uscc is not null and party_type in ('法人及非法人组织', '个体工商户') {{ in_touched }}
    union all
    {%- endfor %}
    select
        uscc,
        enterprise_name as contributed_name,
        case when enterprise_type = '个体工商户' then '个体工商户' else '法人及非法人组织' end as party_type,
        legal_rep,
        source_department,
        1 as kind_rank,
        established_date as event_date,
        published_at,
        load_id || ':' || source_row_no as record_key,
        enterprise_type,
        registration_status,
        established_date,
        registered_capital_wan,
        address,
        null as tax_status,
        null as tax_credit_rating
    from ({{ latest_versions('stg_landing__enterprise_registrations', ['uscc'],
                             "uscc is not null " ~ in_touched) }}) as registered
    union all
    select
        uscc,
        org_name as contributed_name,
        '法人及非法人组织' as party_type,
        legal_rep,
        source_department,
        1 as kind_rank,
        established_date as event_date,
        published_at,
        load_id || ':' || source_row_no as record_key,
        org_type as enterprise_type,
        registration_status,
        established_date,
        registered_capital_wan,
        null as address,
        null as tax_status,
        null as tax_credit_rating
    from ({{ latest_versions('stg_landing__social_org_registrations', ['uscc'],
                             "uscc is not null " ~ in_touched) }}) as registered
    union all
    select
        uscc,
        taxpayer_name as contributed_name,
        null as party_type,
        legal_rep,
        source_department,
        2 as kind_rank,
        tax_registration_date as event_date,
        published_at,
        load_id || ':' || source_row_no as record_key,
        null as enterprise_type,
        null as registration_status,
        null as established_date,
        null as registered_capital_wan,
        null as address,
        tax_status,
        tax_credit_rating
    from
        ({{ latest_versions('stg_landing__tax_registrations', ['uscc'], "uscc is not null " ~ in_touched) }})
            as taxpayers
),

party_ranked as (
    select
        contributions.*,
        coalesce(precedence.precedence, 99) as precedence
    from contributions
    left join {{ ref('code_source_precedence') }} as precedence
        on contributions.source_department = precedence.department
),

parties as (
    select
        uscc,
        {{ first_by_precedence('contributed_name', order) }} as legal_person_name,
        {{ first_by_precedence('party_type', order) }} as legal_person_type,
        {{ first_by_precedence('legal_rep', order) }} as legal_rep,
        {{ first_by_precedence('source_department', order, present='contributed_name') }} as name_source_department,
        array_agg(distinct source_department) as known_to_departments,
        min(event_date) as first_seen_date,
        max(event_date) as last_seen_date,
        max(published_at) as last_published_at,
        bool_or(kind_rank = 1) as is_registered,
        {{ first_by_precedence('enterprise_type', order) }} as enterprise_type,
        {{ first_by_precedence('registration_status', order) }} as registration_status,
        {{ first_by_precedence('established_date', order) }} as established_date,
        {{ first_by_precedence('registered_capital_wan', order) }} as registered_capital_wan,
        {{ first_by_precedence('address', order) }} as address,
        {{ first_by_precedence('tax_status', order) }} as tax_status,
        {{ first_by_precedence('tax_credit_rating', order) }} as tax_credit_rating
    from party_ranked
    group by uscc
),

authority_keys as (
    -- only USCCs that sign decisions: the lookups below are for authorities, not for every party
    {% if is_incremental() -%}
    select touched_authorities.touched_key as uscc
    from ({{ touched_keys(['versions.authority_uscc']) }}) as touched_authorities
    union
    {{ all_versions_of('stg_landing__admin_licenses', 'decision_no', 'authority_uscc', 'last_published_at') }}
    union
    -- an authority whose decision was withdrawn at the source: named as on its latest decision left
    {{ withdrawn_keys({'admin_penalty': ['authority_uscc'], 'admin_license': ['authority_uscc']}) }}
    {%- else -%}
    select authority_uscc as uscc from {{ ref('credit_admin_penalty') }}
    where authority_uscc is not null
    union
    select authority_uscc from {{ ref('credit_admin_license') }}
    where authority_uscc is not null
    {%- endif %}
),

{%- set decisions = [ref('credit_admin_penalty'), ref('credit_admin_license')] %}

authorities as (
    select
        authority_keys.uscc,
        latest.authority as legal_person_name,
        latest.source_department,
        least({% for d in decisions %}(
            select min(p.decision_date) from {{ d }} as p
            where p.authority_uscc = authority_keys.uscc
        ){{ ", " if not loop.last }}{% endfor %}) as first_seen_date,
        greatest({% for d in decisions %}(
            select max(p.decision_date) from {{ d }} as p
            where p.authority_uscc = authority_keys.uscc
        ){{ ", " if not loop.last }}{% endfor %}) as last_seen_date,
        greatest({% for d in decisions %}(
            select max(p.published_at) from {{ d }} as p
            where p.authority_uscc = authority_keys.uscc
        ){{ ", " if not loop.last }}{% endfor %}) as last_published_at
    from authority_keys
    -- a lateral subquery, correlated with authority_keys: it cannot be a CTE
    cross join lateral (  -- noqa: ST05
        -- its latest penalty and its latest licence (one index probe each), then the later of the two
        select
            own.authority,
            own.source_department
        from (
            {%- for d in decisions %}
            (
                select
                    p.authority,
                    p.source_department,
                    p.decision_date,
                    p.published_at,
                    p.decision_no
                from {{ d }} as p
                where p.authority_uscc = authority_keys.uscc
                order by p.decision_date desc, p.published_at desc, p.decision_no desc
                limit 1
            ){{ " union all" if not loop.last }}
            {%- endfor %}
        ) as own
        order by own.decision_date desc, own.published_at desc, own.decision_no desc
        limit 1
    ) as latest
),

merged as (
    select
        coalesce(authorities.uscc, parties.uscc) as uscc,
        coalesce(authorities.legal_person_name, parties.legal_person_name) as legal_person_name,
        case when authorities.uscc is not null then '机关' else parties.legal_person_type end as legal_person_type,
        parties.legal_rep,
        authorities.uscc is not null as is_authority,
        coalesce(authorities.source_department, parties.name_source_department) as name_source_department,
        array(
            select distinct department
            from unnest(coalesce(parties.known_to_departments, '{}') || authorities.source_department) as department
            where department is not null
            order by department
        ) as known_to_departments,
        least(parties.first_seen_date, authorities.first_seen_date) as first_seen_date,
        greatest(parties.last_seen_date, authorities.last_seen_date) as last_seen_date,
        greatest(parties.last_published_at, authorities.last_published_at) as last_published_at,
        coalesce(parties.is_registered, false) as is_registered,
        parties.enterprise_type,
        parties.registration_status,
        parties.established_date,
        parties.registered_capital_wan,
        parties.address,
        parties.tax_status,
        parties.tax_credit_rating
    from parties
    full outer join authorities on parties.uscc = authorities.uscc
),

final as (
    select
        merged.uscc,
        merged.legal_person_name,
        merged.legal_person_type,
        merged.legal_rep,
        merged.is_authority,
        substr(merged.uscc, 3, 6) as region_code,
        division.division_name as region_name,
        merged.name_source_department,
        merged.known_to_departments,
        merged.first_seen_date,
        merged.last_seen_date,
        merged.last_published_at,
        merged.is_registered,
        merged.enterprise_type,
        merged.registration_status,
        merged.established_date,
        merged.registered_capital_wan,
        merged.address,
        merged.tax_status,
        merged.tax_credit_rating
    from merged
    left join {{ ref('basic_admin_division') }} as division on substr(merged.uscc, 3, 6) = division.division_code
)

select * from final
