{#- Values of a published sensitive column that do not look masked (the unit tests check the rule
    itself; this checks that the YAML flag reached the data). -#}
{% test is_masked(model, column_name, kind) %}
select {{ column_name }} from {{ model }}
where {{ column_name }} is not null
  and not (
    {%- if kind == 'id_number' %}
      {{ column_name }} ~ '^[0-9A-Z*]{6}[*]+[0-9A-Z*]{4}$' or {{ column_name }} ~ '^[*]+$'
    {%- elif kind == 'name' %}
      {{ column_name }} ~ '^.[*]+$'
    {%- else %}
      {{ column_name }} ~ '^[*]*$'
    {%- endif %}
  )
{% endtest %}
