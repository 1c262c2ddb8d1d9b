{#-
    materialized='incremental_when_published' — dbt's incremental materialization, run only when
    there is something for it (dbt_project/README.md, "Departures from stock dbt"). Every incremental
    model here follows the batches published since what it holds (macros/incremental.sql: its
    watermark, on published_at, else last_published_at); a build whose inputs — the staging models it
    is built from, or for a staging model its datasets' published loads — have nothing published
    after its watermark would change nothing, yet dbt would still run it through a temporary table,
    column comparisons, a delete and an insert. (A model built from staging models also has something
    for it when a row of their datasets was withdrawn at the source after its watermark,
    ops.withdrawals: the keys that row named are recomputed, macros/withdrawals.sql. Until a newer
    batch is published, every build recomputes those few keys again, to the same rows.) Such a
    build leaves the model as it is (its hooks still run), unless its SQL now gives a column its
    table lacks (dbt would add it: on_schema_change), which dbt's own materialization then does. A
    --full-refresh build, and a model's first build, always go through dbt's own.

    is_incremental() below is dbt's, also true for this materialization: the model's SQL is compiled
    for an incremental run exactly as with materialized='incremental'.
-#}
{%- materialization incremental_when_published, default -%}
    {#- flags.FULL_REFRESH: is_incremental() stays true for a model configured full_refresh=false -#}
    {%- if is_incremental() and not flags.FULL_REFRESH and nothing_published_since_built() and not adds_columns() -%}
        {{ return(leave_as_it_is(this.incorporate(type='table'), 'nothing published since it was built')) }}
    {%- endif -%}
    {{ return(dbt.materialization_incremental_default()) }}
{%- endmaterialization -%}

{#- dbt's is_incremental() (global_project/macros/materializations/models/incremental/is_incremental.sql),
    with incremental_when_published an incremental materialization too. -#}
{% macro is_incremental() -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set relation = adapter.get_relation(this.database, this.schema, this.table) -%}
    {{ return(relation is not none
              and relation.type == 'table'
              and model.config.materialized in ('incremental', 'incremental_when_published')
              and not should_full_refresh()) }}
{%- endmacro %}

{#- True when no input of this incremental model (see above) has anything published after its
    watermark. Every part is an index probe (max of an indexed column), whatever the watermark. -#}
{% macro nothing_published_since_built() -%}
    {%- set documented = model.columns.keys() | list -%}
    {%- set column = 'published_at' if 'published_at' in documented
                     else 'last_published_at' if 'last_published_at' in documented else none -%}
    {%- set datasets, staged, withdrawn = [], [], [] -%}
    {%- set todo, seen = model.depends_on.nodes | list, [] -%}
    {%- for _ in range(graph.nodes | length + graph.sources | length) if todo -%}
        {%- set unique_id = todo.pop() -%}
        {%- if unique_id not in seen -%}
            {%- do seen.append(unique_id) -%}
            {%- set source = graph.sources.get(unique_id) -%}
            {%- set node = graph.nodes.get(unique_id) -%}
            {%- if source and source.source_name == 'landing' -%}
                {%- do datasets.append(source.name) -%}
            {%- elif node and node.resource_type == 'model' and node.fqn[1] == 'staging' -%}
                {%- do staged.append(adapter.quote(node.schema) ~ "." ~ adapter.quote(node.alias)) -%}
                {%- for upstream in node.depends_on.nodes if upstream in graph.sources -%}
                    {%- if graph.sources[upstream].source_name == 'landing' -%}
                        {%- do withdrawn.append(graph.sources[upstream].name) -%}
                    {%- endif -%}
                {%- endfor -%}
            {%- elif node -%}
                {%- do todo.extend(node.depends_on.nodes) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if column is none or not (datasets or staged) or not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set newest = [] -%}
    {%- if datasets -%}
        {%- do newest.append("(select max(published_at) from " ~ source('ledger', 'loads') ~ " where status = 'published'"
                             ~ " and dataset in ('" ~ datasets | join("', '") ~ "'))") -%}
    {%- endif -%}
    {%- for relation in staged -%}
        {%- do newest.append("(select max(published_at) from " ~ relation ~ ")") -%}
    {%- endfor -%}
    {%- if withdrawn -%}
        {%- do newest.append("(select max(withdrawn_at) from " ~ source('ledger', 'withdrawals')
                             ~ " where dataset in ('" ~ withdrawn | unique | join("', '") ~ "'))") -%}
    {%- endif -%}
    {%- call statement('nothing_published_since_built', fetch_result=True, auto_begin=True) -%}
        select coalesce(greatest({{ newest | join(', ') }}), '-infinity'::timestamptz)
               <= (select coalesce(max({{ column }}), '-infinity'::timestamptz) - interval '{{ var("incremental_lookback") }}'
                   from {{ this }})
    {%- endcall -%}
    {{ return(load_result('nothing_published_since_built').table.columns[0].values()[0]) }}
{%- endmacro %}

{#- True when the model's SQL gives a column its table does not have. -#}
{% macro adds_columns() -%}
    {%- set present = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
    {%- for column in get_column_schema_from_query(sql) -%}
        {%- if column.name not in present -%}
            {{ return(true) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(false) }}
{%- endmacro %}
