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
