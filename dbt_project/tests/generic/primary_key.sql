{#- Primary-key test (or a candidate key's): the key — one column (column-level test) or several
    (`columns`, model-level) — is never null and never repeated. One test where not_null and unique
    would be two: every daily build runs it for every model, and each dbt test node costs a few
    tens of milliseconds before its query does anything. In a daily build its relation is scoped
    as for other tests, with the rows of a new null key added (macros/incremental.sql). -#}
{% test primary_key(model, column_name=none, columns=none) %}
{%- set keys = columns or [column_name] %}
select {{ keys | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ keys | join(', ') }}
having count(*) > 1 or {% for key in keys %}{{ key }} is null{{ " or " if not loop.last }}{% endfor %}
{% endtest %}
