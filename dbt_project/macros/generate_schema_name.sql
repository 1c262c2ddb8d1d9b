{#- Layers are schemas named for what they hold (staging, basic, credit …), not prefixed per target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name is not none else target.schema }}
{%- endmacro %}
