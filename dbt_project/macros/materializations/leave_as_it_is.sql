{#-
    The end of a node that the project's named materializations leave as it is (view_if_changed,
    incremental_when_published): its hooks run as usual (e.g. staging's record_test_watermark), with
    no statement between them, and dbt reports it `unchanged`. The caller has opened the transaction
    (its check asked with auto_begin), which this commits.
-#}
{% macro leave_as_it_is(relation, reason) -%}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {%- call noop_statement('main', 'unchanged', 'UNCHANGED') -%}
        -- {{ relation }} left as it is: {{ reason }}
    {%- endcall -%}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [relation]}) }}
{%- endmacro %}
