{#-
    Incremental models here follow the day's new batches, and give exactly what a full refresh gives:

    * watermark(): the newest publication time the model already holds (minus the lookback var);
    * new_decisions(): decision numbers with a version published after it;
    * touched_keys(): every key (USCC, ID number …) that any version of those decisions carries,
      old versions included, so a correction that moves a penalty from one party to another
      recomputes both parties;
    * delete_touched_uscc() / delete_touched_persons() (macros/registers.sql, which widens the
      touched keys to every dataset): pre-hooks that remove the touched keys' rows before they are
      recomputed from all their data (keys left with no data stay deleted, as in a full refresh). A model with
      this pre-hook only recomputes touched keys, so it appends (incremental_strategy 'append'):
      dbt's own delete+insert would look for those keys again.
-#}
{% macro watermark(column='published_at') -%}
    {#- Fetched once and written as a literal: the planner then knows how few rows are newer and
        reads them through the published_at indexes (a subquery's value it cannot know, and plans
        for a third of the table). As text, so the value round-trips exactly. Every incremental
        model keeps an index on its watermark column, so the read is one index probe; and it is
        read once per node and phase: a model asks for it many times (pre-hook and body, once per
        dataset it follows), so the value is remembered in the node's context. Every read happens
        before the node writes (compiling, rendering its pre-hooks), so all see the same value. -#}
    {%- set query -%}
        select (coalesce(max({{ column }}), '-infinity'::timestamptz) - interval '{{ var("incremental_lookback") }}')::text
        from {{ this }}
    {%- endset -%}
    {%- if execute -%}
        {%- set remembered = context.setdefault('_huiju_watermarks', {}) -%}
        {%- set key = this ~ '.' ~ column -%}
        {%- if key not in remembered -%}
            {%- do remembered.update({key: run_query(query).columns[0].values()[0]}) -%}
        {%- endif -%}
        '{{ remembered[key] }}'::timestamptz
    {%- else -%}
        ({{ query }})::timestamptz
    {%- endif -%}
{%- endmacro %}

{#- Declares watermark(column) for the rest of this node's compilation: for a model whose own rows
    do not tell how far it has read (the legal-person history, macros/history.sql). -#}
{% macro declare_watermark(column, value) -%}
    {%- if execute -%}
        {%- do context.setdefault('_huiju_watermarks', {}).update({this ~ '.' ~ column: value}) -%}
    {%- endif -%}
{%- endmacro %}

{% macro new_decisions(column='published_at') -%}
    select decision_no from {{ ref('stg_landing__admin_penalties') }} where published_at > {{ watermark(column) }}
{%- endmacro %}

{% macro touched_keys(key_expressions, column='last_published_at') -%}
    select distinct touched.touched_key
    from {{ ref('stg_landing__admin_penalties') }} as versions
    cross join lateral (values {% for expression in key_expressions %}({{ expression }}){{ "," if not loop.last }}{% endfor %}) as touched (touched_key)
    where versions.decision_no in ({{ new_decisions(column) }})
      and touched.touched_key is not null
{%- endmacro %}
