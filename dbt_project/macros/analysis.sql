{#-
    The analysis layer (models/analysis/) reads its facts as of an instant: a report for a past period
    sets the session setting huiju.as_of (huiju/reports/statistics.py) and every analysis view then
    shows what the platform had published by then — the versions valid at that instant — so a report
    rebuilt later gives the same numbers. Unset (dashboards, ad-hoc queries), it is 'infinity': now.
-#}
{% macro analysis_as_of() -%}
    coalesce(nullif(current_setting('huiju.as_of', true), '')::timestamptz, 'infinity'::timestamptz)
{%- endmacro %}

{#- A version (version_from, version_until) known and current at the as-of instant. -#}
{% macro valid_as_of(relation='') -%}
    {%- set prefix = relation ~ '.' if relation else '' -%}
    {{ prefix }}version_from <= {{ analysis_as_of() }}
    and ({{ prefix }}version_until is null or {{ prefix }}version_until > {{ analysis_as_of() }})
{%- endmacro %}

{#- The district an address names, for a record without a usable code: the current district whose
    name the address contains, preferring one whose city (or province) the address names too, then
    the longest name. Read only for the records that need it (a correlated subquery). -#}
{% macro division_of_address(address_expression) -%}
    (
        select districts.division_code
        from {{ ref('basic_admin_division') }} as districts
        left join {{ ref('basic_admin_division') }} as cities on districts.parent_code = cities.division_code
        where
            districts.division_level = 'district'
            and districts.is_current
            and districts.division_name not in ('市辖区', '县', '郊区', '城区', '矿区')
            and strpos({{ address_expression }}, districts.division_name) > 0
        order by
            coalesce(strpos({{ address_expression }}, cities.division_name) > 0, false) desc,
            length(districts.division_name) desc,
            districts.division_code
        limit 1
    )
{%- endmacro %}

{#- Versions of one decision dataset (staging keeps every version): each valid from its publication
    until the next version of the same decision was published. `where` filters whole decisions. -#}
{% macro decision_versions(staging_model, where=none) -%}
    select
        *,
        lag(published_at) over (
            partition by decision_no order by published_at desc, load_id desc, source_row_no desc
        ) as superseded_at
    from ({{ city_first_versions(staging_model, where) | indent(4) }}) as deduplicated
{%- endmacro %}

{#- The statistics' dimensions of each version of decisions (rows of decision_versions()): decision month,
    party type, district (the USCC's region part, else the ID number's, where the national list knows
    it), department, authority, the category column given, the fine when there is one; the version's
    validity; no identifier of the party. -#}
{% macro decision_facts(category_expression, category_name, fine_column=none) -%}
    select
        versions.decision_no,
        versions.load_id,
        versions.source_row_no,
        date_trunc('month', versions.decision_date)::date as decision_month,
        versions.decision_date,
        versions.party_type,
        versions.party_type = '自然人' as is_natural_person,
        coalesce(by_uscc.division_code, by_id_number.division_code) as region_code,
        versions.source_department,
        versions.authority,
        {{ category_expression }} as {{ category_name }},
        {%- if fine_column %}
        coalesce(versions.{{ fine_column }}, 0) as {{ fine_column }},
        {%- endif %}
        versions.published_at as version_from,
        versions.superseded_at as version_until,
        versions.published_at
    from versions
    left join {{ ref('basic_admin_division') }} as by_uscc on substr(versions.uscc, 3, 6) = by_uscc.division_code
    left join {{ ref('basic_admin_division') }} as by_id_number
        on substr(versions.legal_rep_id_no, 1, 6) = by_id_number.division_code
{%- endmacro %}

{#- The 双公示 deadline of a decision dated `decision_date`: the 7th working day after it (ops.add_working_days,
    null where the calendar cannot tell). The rule's one place: credit_publication_timeliness judges each
    row by it, analysis_publication_timeliness each (decision date, received date) pair. -#}
{% macro publication_deadline(decision_date) -%}
    ops.add_working_days({{ decision_date }}, 7)
{%- endmacro %}
