{#-
    The legal-person history (models/archive/archive_legal_person_versions.sql) is kept like a dbt
    snapshot — never rebuilt, only added to — but compares only the legal persons whose data
    changed since it last looked, so it needs its own watermark: how far it has examined the
    published data, kept in dbt_state.history_watermark (migration 100_dbt_state.sql) whether or
    not that build found a change to record. (A watermark read from the history itself would stop
    at its latest change, and every build would compare more legal persons than the last.)
-#}

{#- The columns whose change makes a new version: who the legal person is and its registration. -#}
{% macro legal_person_history_columns() -%}
    {{ return(['legal_person_name', 'legal_person_type', 'legal_rep', 'is_authority',
               'enterprise_type', 'registration_status', 'established_date', 'registered_capital_wan',
               'address', 'tax_status', 'tax_credit_rating']) }}
{%- endmacro %}

{#- The newest publication time basic_legal_person is built from, as SQL: what a build of the
    history has examined. Never ahead of the data actually examined (a batch naming no legal person
    leaves it behind, and is examined again by the next build, which finds nothing in it). -#}
{% macro legal_person_history_horizon() -%}
    (select coalesce(max(last_published_at), '-infinity'::timestamptz) from {{ ref('basic_legal_person') }})
{%- endmacro %}

{#- The history's watermark (minus the lookback var, like watermark()), as text. -#}
{% macro history_watermark() -%}
    {%- set query -%}
        select (coalesce(max(published_through), '-infinity'::timestamptz)
                - interval '{{ var("incremental_lookback") }}')::text
        from dbt_state.history_watermark where model = '{{ this.identifier }}'
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] if execute else '-infinity') }}
{%- endmacro %}

{#- Post-hook of the history: it has now examined everything basic_legal_person is built from. -#}
{% macro record_history_watermark() -%}
    insert into dbt_state.history_watermark (model, published_through)
    values ('{{ this.identifier }}', {{ legal_person_history_horizon() }})
    on conflict (model) do update set published_through = excluded.published_through
{%- endmacro %}
