{#- Values of column_name that are not in `to`.`field` (nulls allowed): a relationships test with arguments. -#}
{% test dbt_utils_free_relationships(model, column_name, to, field) %}
select {{ column_name }} from {{ model }}
where {{ column_name }} is not null
  and {{ column_name }} not in (select {{ field }} from {{ to }})
{% endtest %}
