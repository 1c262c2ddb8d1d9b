{#- 公示: a record is publishable until its 公示截止期 (inclusive); without one it stays publishable. -#}
{% macro is_publishable(publish_until) -%}
    coalesce({{ publish_until }} >= current_date, true)
{%- endmacro %}


{#-
    share_publication(relation, where): a share model, whole — the rows of the credit ``relation``
    that ``where`` keeps (the publishable set, or the list entries in force), each column as the
    calling model's YAML declares it, masked by its flags (masked_columns), so a column flagged
    sensitive is masked wherever it is shared. A view (the share folder's materialization): a record
    leaves on the day it stops being publishable, with no rebuild.
-#}
{% macro share_publication(relation, where) -%}
with publishable as (
    select * from {{ ref(relation) }}
    where {{ where }}
)

select
    {{ masked_columns('publishable') }}
from publishable
{%- endmacro %}
