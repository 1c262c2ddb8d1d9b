{#- 公示: a record is publishable until its 公示截止期 (inclusive); without one it stays publishable. -#}
{% macro is_publishable(publish_until) -%}
    coalesce({{ publish_until }} >= current_date, true)
{%- endmacro %}
