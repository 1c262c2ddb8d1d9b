{#-
    where: __changed_by_this_build__ — data tests of a daily build check what the build changed, not
    the whole relation (dbt_project/README.md, "Departures from stock dbt"). It is dbt's own `where`
    test config, set per folder in dbt_project.yml (data_tests:), with a marker this project's
    get_where_subquery() (dbt's, below, otherwise unchanged) turns into the rows at run time. A full
    refresh, or a build before staging first ran, checks everything.

    Only tests whose verdict on a whole relation is their verdict on its changed rows are narrowed:
    row by row (not_null, accepted_values, relationships, dbt_utils_free_relationships, is_masked),
    and the key tests (unique, primary_key), which check every row holding a key that a changed row
    holds, so a new key that repeats an old one is still caught. Any other test — a newcomer's
    expression or aggregate test, say — checks its whole relation even where the marker is set.

    * record_test_watermark(), a pre-hook of stg_landing__admin_penalties, keeps the newest
      publication time staging held before this build (-infinity on a full refresh) in
      dbt_state.test_watermark (migration 100_dbt_state.sql), outside the layers; every test of the
      build reads it (in Airflow too, where each dbt node is its own dbt invocation but staging runs
      first);
    * relations listed in var test_scopes: the rows of every key (e.g. decision) the relation they
      follow has published after it — a filter on the key, which reaches that relation's indexes
      through the views (a filter on their publication times would not). Keys are matched with
      `= any(array(…))`: an index lookup per key whatever the planner guesses of their number;
    * other relations with a publication time (published_at, else last_published_at, as their YAML
      documents it — tests/dbt checks that it documents every one): the rows published after the
      watermark, and for a key test every row sharing a key with them, and those whose key is null;
    * anything else: the whole relation.

    A daily build runs about seventy tests, each compiled on its own, and none of them asks the
    database how to scope itself once staging has run: the pre-hook leaves the watermark it records
    in the build's parsed graph too, the one thing dbt shares between the nodes of an invocation
    (a test compiled before it, or in an invocation of its own as in Airflow, reads the table).
-#}

{#- The generic tests narrowed to the changed rows (see above); the key tests among them. -#}
{%- macro tests_checked_on_changed_rows() -%}
    {{ return({'row': ['not_null', 'accepted_values', 'relationships', 'dbt_utils_free_relationships', 'is_masked'],
               'key': ['unique', 'primary_key']}) }}
{%- endmacro %}

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
{% macro changed_rows_filters(relation) -%}
    {%- set test = model.get('test_metadata') or {} -%}
    {%- set narrowed = tests_checked_on_changed_rows() -%}
    {%- if flags.FULL_REFRESH or not execute or test.get('name') not in narrowed.row + narrowed.key -%}
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
    {%- set kwargs = test.get('kwargs') or {} -%}
    {%- set keys = (kwargs.get('columns') or [kwargs.get('column_name')]) if test.get('name') in narrowed.key else [] -%}
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

{#- The relation a data test reads: dbt's get_where_subquery() (the relation, or its rows where the
    test's `where` holds), with `__changed_by_this_build__` in `where` read as changed_rows_filters(). -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') or '' -%}
    {%- set marker = '__changed_by_this_build__' -%}
    {%- set filters = changed_rows_filters(relation) if where and marker in where else [where] -%}
    {%- set wheres = [] -%}
    {%- for filter in filters -%}
        {%- do wheres.append(where | replace(marker, filter)) -%}
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
