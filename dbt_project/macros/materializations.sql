{#-
    dbt's view, seed, incremental and snapshot materializations (called below), made to leave alone
    what a build would not change. A daily build otherwise works on every node whatever the day
    brought: creating every view again (a new view, two renames, a drop, a comment per column, the
    share layer's contract check), loading every seed again, and running every incremental model
    and snapshot through its temporary table, column comparisons, delete and insert — about a tenth
    of a second each, spent on seventeen views the same as yesterday's, five unchanged seeds and a
    dozen incremental models and snapshots with no new data. A build with --full-refresh (whatever
    a model's own full_refresh config: archive_legal_person_versions then compares every legal
    person), and a relation's first build, always go through dbt's own.
-#}

{#- The end of a node left as it is: its hooks run as usual (e.g. staging's record_test_watermark),
    with no statement between them. The caller has opened the transaction (its check asked with
    auto_begin), which this commits. -#}
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


{#-
    Views and seeds. One is left as it is when it is current: it exists, is the very relation (OID)
    recorded in dbt_state.relation_fingerprint (migration 110) when it was last built, and its
    fingerprint is unchanged — a hash of what it is made of: its compiled SQL (a seed: its file's
    checksum), description, columns (descriptions, data types, constraints) and config, and for a
    view the columns (names and types, in order) of the relations it reads as they are now: a
    column added to an incremental model a view reads with `select *` changes what the view would
    show, although the view's own SQL is the same. A view dropped since (dbt drops a rebuilt
    table's dependent views by cascade, and a view built again drops its dependents the same way)
    no longer matches, and is built again.
-#}
{%- materialization view, default -%}
    {%- set inputs = [] -%}
    {%- for unique_id in model.depends_on.nodes -%}
        {%- set node = graph.nodes.get(unique_id) or graph.sources.get(unique_id) -%}
        {%- if node -%}
            {%- do inputs.append(adapter.quote(node.schema) ~ "." ~ adapter.quote(node.alias or node.identifier)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set state = fingerprint_state(sql, inputs) -%}
    {%- if state.current and not flags.FULL_REFRESH -%}
        {{ return(leave_as_it_is(this.incorporate(type='view'), 'dbt_state.relation_fingerprint')) }}
    {%- endif -%}
    {%- set relations = dbt.materialization_view_default() -%}
    {%- do record_fingerprint(state) -%}
    {{ return(relations) }}
{%- endmaterialization -%}

{%- materialization seed, default -%}
    {#- dbt checksums a seed over 1 MiB by its path, not its contents: such a one is always loaded -#}
    {%- set state = fingerprint_state(model.checksum.name ~ ':' ~ model.checksum.checksum, []) -%}
    {%- if state.current and model.checksum.name != 'path' and not flags.FULL_REFRESH -%}
        {%- do store_result('agate_table', response='OK') -%}
        {{ return(leave_as_it_is(this.incorporate(type='table'), 'dbt_state.relation_fingerprint')) }}
    {%- endif -%}
    {%- set relations = dbt.materialization_seed_default() -%}
    {%- do record_fingerprint(state) -%}
    {{ return(relations) }}
{%- endmaterialization -%}

{#- Whether this node's relation is current, and its fingerprint's parts (see above): `code` is
    what it is built from, `inputs` the relations it reads. Asked in the transaction the
    materialization then works in. -#}
{% macro fingerprint_state(code, inputs) -%}
    {%- set name = this.include(database=false) | string -%}
    {%- set local = local_md5(code ~ '|' ~ model.description ~ '|' ~ tojson(model.columns, sort_keys=true)
                              ~ '|' ~ tojson(model.config, sort_keys=true)) -%}
    {%- set inputs_sql -%}
        select coalesce(string_agg(attrelid::regclass::text || '.' || attname || ' ' || format_type(atttypid, atttypmod),
                                   ',' order by attrelid::regclass::text, attnum), '')
        from pg_attribute
        where attrelid = any(array[{% for input in inputs %}to_regclass('{{ input }}'){{ ", " if not loop.last }}{% endfor %}]::regclass[])
          and attnum > 0 and not attisdropped
    {%- endset -%}
    {%- set current = false -%}
    {%- if execute -%}
        {%- call statement('fingerprint_state', fetch_result=True, auto_begin=True) -%}
            select exists (
                select 1 from dbt_state.relation_fingerprint
                where relation = '{{ name }}'
                  and relation_oid = to_regclass('{{ name }}')
                  and fingerprint = md5('{{ local }}' || ({{ inputs_sql }}))
            )
        {%- endcall -%}
        {%- set current = load_result('fingerprint_state').table.columns[0].values()[0] -%}
    {%- endif -%}
    {{ return({'name': name, 'local': local, 'inputs_sql': inputs_sql, 'current': current}) }}
{%- endmacro %}

{#- After dbt's materialization built (and committed) the relation: what it was built from. -#}
{% macro record_fingerprint(state) -%}
    {%- call statement('record_fingerprint', auto_begin=True) -%}
        insert into dbt_state.relation_fingerprint (relation, relation_oid, fingerprint)
        values ('{{ state.name }}', to_regclass('{{ state.name }}'), md5('{{ state.local }}' || ({{ state.inputs_sql }})))
        on conflict (relation) do update
        set relation_oid = excluded.relation_oid, fingerprint = excluded.fingerprint, built_at = now()
    {%- endcall -%}
    {{ adapter.commit() }}
{%- endmacro %}


{#-
    Incremental models. Every one here follows the batches published since what it holds
    (macros/incremental.sql: its watermark, on published_at, else last_published_at): a build whose
    inputs — the staging models it is built from, or for a staging model its datasets' published
    loads — have nothing published after its watermark would change nothing, and leaves it as it
    is (its hooks still run), unless its SQL now gives a column its table lacks (dbt would add it:
    on_schema_change), which dbt's own materialization then does.
-#}
{%- materialization incremental, default -%}
    {%- if is_incremental() and not flags.FULL_REFRESH and nothing_published_since_built()
          and not adds_columns() -%}
        {{ return(leave_as_it_is(this.incorporate(type='table'), 'nothing published since it was built')) }}
    {%- endif -%}
    {{ return(dbt.materialization_incremental_default()) }}
{%- endmaterialization -%}

{#- True when no input of this incremental model (see above) has anything published after its
    watermark. Every part is an index probe (max of an indexed column), whatever the watermark. -#}
{% macro nothing_published_since_built() -%}
    {%- set documented = model.columns.keys() | list -%}
    {%- set column = 'published_at' if 'published_at' in documented
                     else 'last_published_at' if 'last_published_at' in documented else none -%}
    {%- set datasets, staged = [], [] -%}
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


{#-
    Snapshots (timestamp strategy, deletions ignored): a source with no row updated after the
    newest version the snapshot holds would add no version, and the snapshot is left as it is.
-#}
{%- materialization snapshot, default -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- if existing is not none and not flags.FULL_REFRESH and config.get('strategy') == 'timestamp'
          and config.get('hard_deletes') in (none, 'ignore') and not config.get('invalidate_hard_deletes') -%}
        {%- call statement('snapshot_is_current', fetch_result=True, auto_begin=True) -%}
            select coalesce((select max(source.{{ config.get('updated_at') }}) from ({{ sql }}) as source), '-infinity'::timestamptz)
                   <= (select coalesce(max(dbt_updated_at), '-infinity'::timestamptz)
                              - interval '{{ var("incremental_lookback") }}' from {{ this }})
        {%- endcall -%}
        {%- if load_result('snapshot_is_current').table.columns[0].values()[0] -%}
            {{ return(leave_as_it_is(this.incorporate(type='table'), 'nothing updated since its newest version')) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(dbt.materialization_snapshot_default()) }}
{%- endmaterialization -%}
