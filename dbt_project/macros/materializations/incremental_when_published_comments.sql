{#-
    Part of materialized='incremental_when_published' (incremental_when_published.sql): its table and
    column comments (persist_docs, dbt_project.yml) are written when the table is built from scratch
    — its first build and a full refresh — not when a daily build adds to it, as dbt's incremental
    materialization does every run. Besides being the same text again, COMMENT takes a lock that
    autovacuum holds while it works on the table, so a daily build re-commenting its tables waited up
    to deadlock_timeout (1 s) on each table autovacuum was busy with (right after a full refresh: all
    of the large ones). Changed descriptions reach the database with the next full refresh. Every
    other node, an incremental model materialized 'incremental' included, goes through dbt's own.
    (dbt looks for a dispatched macro in the root project first.)
-#}
{% macro postgres__persist_docs(relation, model, for_relation, for_columns) -%}
    {%- if not (model.config.materialized == 'incremental_when_published' and is_incremental()) -%}
        {{ return(default__persist_docs(relation, model, for_relation, for_columns)) }}
    {%- endif -%}
{%- endmacro %}
