{#-
    Incremental models here follow the day's new batches, and give exactly what a full refresh gives:

    * watermark(): the newest publication time the model already holds (minus the lookback var);
    * new_decisions(): decision numbers with a version published after it;
    * touched_keys(): every key (USCC, ID number …) that any version of those decisions carries,
      old versions included, so a correction that moves a penalty from one party to another
      recomputes both parties;
    * delete_touched_uscc() / delete_touched_persons() (macros/registers.sql, which widens the
      touched keys to every dataset): pre-hooks that remove the touched keys' rows before they are
      recomputed from all their data (keys left with no data stay deleted, as in a full refresh). A model with
      this pre-hook only recomputes touched keys, so it appends (incremental_strategy 'append'):
      dbt's own delete+insert would look for those keys again.
-#}
{% macro watermark(column='published_at') -%}
    {#- Fetched once and written as a literal: the planner then knows how few rows are newer and
        reads them through the published_at indexes (a subquery's value it cannot know, and plans
        for a third of the table). As text, so the value round-trips exactly. Every incremental
        model keeps an index on its watermark column, so the read is one index probe; and it is
        read once per node and phase: a model asks for it many times (pre-hook and body, once per
        dataset it follows), so the value is remembered in the node's context. Every read happens
        before the node writes (compiling, rendering its pre-hooks), so all see the same value. -#}
    {%- set query -%}
        select (coalesce(max({{ column }}), '-infinity'::timestamptz) - interval '{{ var("incremental_lookback") }}')::text
        from {{ this }}
    {%- endset -%}
    {%- if execute -%}
        {%- set remembered = context.setdefault('_huiju_watermarks', {}) -%}
        {%- set key = this ~ '.' ~ column -%}
        {%- if key not in remembered -%}
            {%- do remembered.update({key: run_query(query).columns[0].values()[0]}) -%}
        {%- endif -%}
        '{{ remembered[key] }}'::timestamptz
    {%- else -%}
        ({{ query }})::timestamptz
    {%- endif -%}
{%- endmacro %}

{#- Declares watermark(column) for the rest of this node's compilation: for a model whose own rows
    do not tell how far it has read (the legal-person history, macros/history.sql). -#}
{% macro declare_watermark(column, value) -%}
    {%- if execute -%}
        {%- do context.setdefault('_huiju_watermarks', {}).update({this ~ '.' ~ column: value}) -%}
    {%- endif -%}
{%- endmacro %}

{% macro new_decisions(column='published_at') -%}
    select decision_no from {{ ref('stg_landing__admin_penalties') }} where published_at > {{ watermark(column) }}
{%- endmacro %}

{% macro touched_keys(key_expressions, column='last_published_at') -%}
    select distinct touched.touched_key
    from {{ ref('stg_landing__admin_penalties') }} as versions
    cross join lateral (values {% for expression in key_expressions %}({{ expression }}){{ "," if not loop.last }}{% endfor %}) as touched (touched_key)
    where versions.decision_no in ({{ new_decisions(column) }})
      and touched.touched_key is not null
{%- endmacro %}

{#-
    Data tests of a daily build check what the build changed; a full refresh checks everything.
    A test configured with `where: __recent__` (all of them, dbt_project.yml) is scoped at run time:

    * record_test_watermark(), a pre-hook of staging, keeps the newest publication time staging held
      before this build (-infinity on a full refresh) in dbt_state.test_watermark (migration
      100_dbt_state.sql), outside the layers; every test of the build reads it (in Airflow too,
      where each dbt node is its own dbt invocation but staging runs first);
    * relations listed in var test_scopes: the rows of every key (e.g. decision) the relation they
      follow has published after it — a filter on the key, which reaches that relation's indexes
      through the views (a filter on their publication times would not). Keys are matched with
      `= any(array(…))`: an index lookup per key whatever the planner guesses of their number;
    * other relations with a publication time (published_at, else last_published_at, as their YAML
      documents it — tests/dbt checks that it documents every one): a primary-key test
      (tests/generic/primary_key.sql) checks every row holding a key that a new row holds, so a new
      key that repeats an old one is still caught, and the new rows whose key is null; other tests
      check the new rows;
    * anything else, a full refresh, or before staging first ran: the whole relation.

    A daily build runs about seventy tests, each compiled on its own, and none of them asks the
    database how to scope itself once staging has run: the pre-hook leaves the watermark it records
    in the build's parsed graph too, the one thing dbt shares between the nodes of an invocation
    (a test compiled before it, or in an invocation of its own as in Airflow, reads the table).
-#}
{% macro record_test_watermark() -%}
    {%- set published_after = watermark('published_at') if is_incremental() else "'-infinity'::timestamptz" -%}
    {%- if execute -%}
        {%- do graph.setdefault('huiju_build', {}).update({'test_watermark':
                context.get('_huiju_watermarks', {}).get(this ~ '.published_at', '-infinity') if is_incremental()
                else '-infinity'}) -%}
    {%- endif -%}
    insert into dbt_state.test_watermark (model, published_after)
    values ('{{ this.identifier }}', {{ published_after }})
    on conflict (model) do update set published_after = excluded.published_after
{%- endmacro %}

{#- The watermark of this build's tests, as text (none before staging first ran). -#}
{% macro test_watermark() -%}
    {%- set recorded = graph.get('huiju_build', {}) -%}
    {%- if 'test_watermark' in recorded -%}
        {{ return(recorded['test_watermark']) }}
    {%- endif -%}
    {%- set query -%}
        select published_after::text from dbt_state.test_watermark where model = 'stg_landing__admin_penalties'
    {%- endset -%}
    {%- set found = run_query(query).rows -%}
    {{ return(found[0][0] if found else none) }}
{%- endmacro %}

{#- The rows a test checks, as predicates on its relation whose union they are ('true': all of them). -#}
{% macro recent_rows_filters(relation) -%}
    {%- if flags.FULL_REFRESH or not execute -%}
        {{ return(['true']) }}
    {%- endif -%}
    {%- set watermark = test_watermark() -%}
    {%- if watermark is none or watermark == '-infinity' -%}
        {{ return(['true']) }}
    {%- endif -%}
    {#- a literal, for the same reason as watermark() -#}
    {%- set published_after = "'" ~ watermark ~ "'::timestamptz" -%}
    {%- for scope in var('test_scopes', {}).values() if relation.identifier in scope.relations -%}
        {#- looked up, not ref(): a test depends on its relation only (and may run first) -#}
        {%- set followed = adapter.get_relation(database=target.database, schema=scope.published_in.schema,
                                                identifier=scope.published_in.relation) -%}
        {{ return([scope.key ~ " = any(array(select " ~ scope.key ~ " from " ~ followed ~ " where "
                   ~ scope.published_in.column ~ " > " ~ published_after ~ "))" if followed is not none else 'true']) }}
    {%- endfor -%}
    {%- set tested = graph.nodes.get(model.get('attached_node') or '') or {} -%}
    {%- set documented = (tested.get('columns') or {}).keys() | list -%}
    {%- set published = 'published_at' if 'published_at' in documented
                        else 'last_published_at' if 'last_published_at' in documented else none -%}
    {%- if published is none -%}
        {{ return(['true']) }}
    {%- endif -%}
    {%- set recent = published ~ " > " ~ published_after -%}
    {%- set test = model.get('test_metadata') or {} -%}
    {%- set kwargs = test.get('kwargs') or {} -%}
    {%- set keys = (kwargs.get('columns') or [kwargs.get('column_name')]) if test.get('name') == 'primary_key' else [] -%}
    {%- if not keys or none in keys -%}
        {{ return([recent]) }}
    {%- endif -%}
    {%- set null_key = "(" ~ recent ~ ") and (" ~ keys | join(" is null or ") ~ " is null)" -%}
    {%- if keys | length == 1 -%}
        {{ return([keys[0] ~ " = any(array(select " ~ keys[0] ~ " from " ~ relation ~ " where " ~ recent ~ "))",
                   null_key]) }}
    {%- endif -%}
    {{ return(["(" ~ keys | join(", ") ~ ") in (select " ~ keys | join(", ") ~ " from " ~ relation
               ~ " where " ~ recent ~ ")", null_key]) }}
{%- endmacro %}

{#- The relation a data test reads: with `where: __recent__`, the rows recent_rows_filters() gives. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set filters = recent_rows_filters(relation) if where and '__recent__' in where else [where] -%}
    {%- set wheres = [] -%}
    {%- for filter in filters -%}
        {%- do wheres.append(where | replace('__recent__', filter)) -%}
    {%- endfor -%}
    {%- if wheres == [''] or wheres == ['true'] -%}
        {%- do return(relation) -%}
    {%- endif -%}
    {%- set selects = [] -%}
    {%- for condition in wheres -%}
        {%- do selects.append("select * from " ~ relation ~ " where " ~ condition) -%}
    {%- endfor -%}
    {%- do return("(" ~ selects | join(" union all ") ~ ") dbt_subquery") -%}
{%- endmacro %}

{#-
    A post-hook of every model and snapshot (dbt_project.yml): what a full refresh (or the first
    build of an incremental model) writes from scratch is analysed at once, so the next statements
    that read it — above all the first daily build — are planned with statistics, and autovacuum
    does not analyse a million rows in the middle of that build. Daily builds write little and
    leave it to autovacuum: the hook renders empty, and dbt sends no statement for it.
-#}
{% macro analyze_after_rebuild() -%}
    {%- set materialized = model.config.get('materialized') -%}
    {%- set rebuilt = materialized in ('table', 'incremental', 'snapshot')
                      and (flags.FULL_REFRESH or (materialized == 'incremental' and not is_incremental())) -%}
    {{ 'analyze ' ~ this if rebuilt else '' }}
{%- endmacro %}
