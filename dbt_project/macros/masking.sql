{#-
    The one masking macro. Emits the select list of the calling model from the columns its YAML
    declares, in order: a column flagged `meta: {sensitive: true}` is masked by its `meta.mask`
    kind, every other column is selected as it is.

      id_number  110101********1234 (region and last four kept, as huiju.masking.mask_id_number)
      name       张**  (surname kept)
      (other)    every character replaced by *

    Used by everything publishable, so a column flagged in YAML is masked wherever it is shared.
-#}
{% macro masked_columns(relation_alias) -%}
    {#- The model's node from the graph (in a unit test, `model` is the test: use the model it tests). -#}
    {%- set node_id = model.get('tested_node_unique_id') or model.get('unique_id') -%}
    {%- set nodes = graph.get('nodes', {}) if execute else {} -%}
    {%- if nodes -%}
        {%- set columns = nodes.get(node_id, {}).get('columns', {}).values() | list -%}
    {%- else -%}
        {#- dbt unit tests render the model without the graph: the test passes the YAML columns as a var. -#}
        {%- set columns = var('unit_test_columns', []) -%}
    {%- endif -%}
    {%- if execute and not columns -%}
        {{ exceptions.raise_compiler_error("masked_columns(): " ~ node_id ~ " declares no columns in YAML") }}
    {%- endif -%}
    {%- for column in columns %}
        {%- set meta = column.meta or {} %}
        {%- set value = relation_alias ~ "." ~ adapter.quote(column.name) %}
        {%- if meta.get('sensitive') %}
            {%- if meta.get('mask') == 'id_number' %}
    case when length({{ value }}) > 10
         then left({{ value }}, 6) || repeat('*', length({{ value }}) - 10) || right({{ value }}, 4)
         else repeat('*', length({{ value }})) end
            {%- elif meta.get('mask') == 'name' %}
    left({{ value }}, 1) || repeat('*', greatest(length({{ value }}) - 1, 1))
            {%- else %}
    repeat('*', length({{ value }}))
            {%- endif %} as {{ adapter.quote(column.name) }}
        {%- else %}
    {{ value }} as {{ adapter.quote(column.name) }}
        {%- endif %}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}
