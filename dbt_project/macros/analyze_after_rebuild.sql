{#-
    A post-hook of every model and snapshot (dbt_project.yml): what a full refresh (or the first
    build of an incremental model) writes from scratch is analysed at once, so the next statements
    that read it — above all the first daily build — are planned with statistics, and autovacuum
    does not analyse a million rows in the middle of that build. Daily builds write little and
    leave it to autovacuum: the hook renders empty, and dbt sends no statement for it.
-#}
{% macro analyze_after_rebuild() -%}
    {%- set materialized = model.config.get('materialized') -%}
    {%- set incremental = materialized in ('incremental', 'incremental_when_published') -%}
    {%- set rebuilt = (materialized in ('table', 'snapshot') or incremental)
                      and (flags.FULL_REFRESH or (incremental and not is_incremental())) -%}
    {{ 'analyze ' ~ this if rebuilt else '' }}
{%- endmacro %}
