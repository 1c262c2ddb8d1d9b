{#-
    Incremental models here follow the day's new batches, and give exactly what a full refresh gives:

    * watermark(): the newest publication time the model already holds (minus the lookback var);
    * new_decisions(): decision numbers with a version published after it;
    * touched_keys(): every key (USCC, ID number …) that any version of those decisions carries,
      old versions included, so a correction that moves a penalty from one party to another
      recomputes both parties;
    * delete_touched(): a pre-hook that removes the touched keys' rows before they are recomputed
      from all their data (keys left with no data stay deleted, as in a full refresh).
-#}
{% macro watermark(column='published_at') -%}
    (select coalesce(max({{ column }}), '-infinity'::timestamptz) - interval '{{ var("incremental_lookback") }}'
     from {{ this }})
{%- endmacro %}

{% macro new_decisions(column='published_at') -%}
    select decision_no from {{ ref('stg_raw__admin_penalty') }} where published_at > {{ watermark(column) }}
{%- endmacro %}

{% macro touched_keys(key_expressions, column='last_published_at') -%}
    select distinct touched.key
    from {{ ref('stg_raw__admin_penalty') }} as versions
    cross join lateral (values {% for expression in key_expressions %}({{ expression }}){{ "," if not loop.last }}{% endfor %}) as touched (key)
    where versions.decision_no in ({{ new_decisions(column) }})
      and touched.key is not null
{%- endmacro %}

{% macro delete_touched(key_column, key_expressions, column='last_published_at') -%}
    {%- if is_incremental() -%}
    delete from {{ this }} where {{ key_column }} in ({{ touched_keys(key_expressions, column) }})
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#-
    Data tests of a daily build check what the day changed; `dbt build --full-refresh` checks
    everything. A test configured with `where: __recent__` (all of them, dbt_project.yml) is scoped
    at run time, unless this is a full refresh:

    * relations listed in var penalty_decision_relations: the rows of every decision with a version
      published within var test_window of the newest publication — a filter on decision_no, which
      reaches the credit table's indexes through the views;
    * other relations with a publication time (published_at, else last_published_at): a primary-key
      test (unique, unique_combination) checks every row holding a key that such a row holds, so a
      new key that repeats an old one is still caught; other tests check those rows;
    * anything else, and every test of a full refresh: the whole relation.
-#}
{% macro recent_publications() -%}
    (select coalesce(max(published_at), '-infinity'::timestamptz) - interval '{{ var("test_window") }}'
     from ops.loads where status = 'published')
{%- endmacro %}

{% macro recent_rows_filter(relation) -%}
    {%- if flags.FULL_REFRESH or not execute -%}
        {{ return('true') }}
    {%- endif -%}
    {%- if relation.identifier in var('penalty_decision_relations', []) -%}
        {#- looked up, not ref(): a test depends on its relation only (and may run first) -#}
        {%- set records = adapter.get_relation(database=target.database, schema='credit',
                                               identifier='credit_admin_penalty') -%}
        {{ return("decision_no in (select decision_no from " ~ records ~ " where published_at > "
                  ~ recent_publications() ~ ")" if records is not none else 'true') }}
    {%- endif -%}
    {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name') | list -%}
    {%- set published = 'published_at' if 'published_at' in names
                        else ('last_published_at' if 'last_published_at' in names else none) -%}
    {%- if published is none -%}
        {{ return('true') }}
    {%- endif -%}
    {%- set recent = published ~ " > " ~ recent_publications() -%}
    {%- set test = model.get('test_metadata') or {} -%}
    {%- set kwargs = test.get('kwargs') or {} -%}
    {%- set keys = [kwargs.get('column_name')] if test.get('name') == 'unique'
                   else (kwargs.get('columns') or []) if test.get('name') == 'unique_combination' else [] -%}
    {%- if keys and keys[0] -%}
        {{ return("(" ~ keys | join(", ") ~ ") in (select " ~ keys | join(", ") ~ " from " ~ relation
                  ~ " where " ~ recent ~ ")") }}
    {%- endif -%}
    {{ return(recent) }}
{%- endmacro %}

{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and '__recent__' in where -%}
        {%- set where = where | replace('__recent__', recent_rows_filter(relation)) -%}
    {%- endif -%}
    {%- if where and where != 'true' -%}
        {%- do return("(select * from " ~ relation ~ " where " ~ where ~ ") dbt_subquery") -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}
