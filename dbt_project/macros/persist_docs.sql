{#-
    Table and column comments (persist_docs, dbt_project.yml) are written when a relation is
    built from scratch — a view or table model every build, an incremental model on its first
    build and on a full refresh — not when a daily build adds to an incremental model. Besides
    being the same text again, COMMENT takes a lock that autovacuum holds while it works on the
    table, so a daily build re-commenting its tables waited up to deadlock_timeout (1 s) on each
    table autovacuum was busy with (right after a full refresh: all of the large ones). Changed
    descriptions of an incremental model reach the database with its next full refresh.
    (dbt looks for a dispatched macro in the root project first.)
-#}
{% macro postgres__persist_docs(relation, model, for_relation, for_columns) -%}
    {%- if not (model.config.materialized in ('incremental', 'incremental_when_published') and is_incremental()) -%}
        {{ return(default__persist_docs(relation, model, for_relation, for_columns)) }}
    {%- endif -%}
{%- endmacro %}
