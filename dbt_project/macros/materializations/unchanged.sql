{#-
    What the named materializations that leave a node as it is share (view_if_changed.sql,
    incremental_when_published.sql), and the two that cannot be named: dbt requires a seed to be
    materialized 'seed' and a snapshot 'snapshot', so those are dbt's own, wrapped, and act only on
    the nodes that opt in through their meta (dbt_project.yml: seeds +meta: {seed_if_changed: true},
    snapshots +meta: {snapshot_if_updated: true}); any other seed or snapshot goes straight through
    dbt's. A --full-refresh build, and a relation's first build, always go through dbt's own.
    (dbt_project/README.md, "Departures from stock dbt".)
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


{#- seed_if_changed: a seed is loaded again only when its file changed (its checksum, kept in
    dbt_state.relation_fingerprint with its description, columns and config). -#}
{%- materialization seed, default -%}
    {%- if not (model.config.meta or {}).get('seed_if_changed') -%}
        {{ return(dbt.materialization_seed_default()) }}
    {%- endif -%}
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

{#- Whether this node's relation is current, and its fingerprint's parts (view_if_changed.sql): `code` is
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


{#- snapshot_if_updated (timestamp strategy, deletions ignored): a source with no row updated after
    the newest version the snapshot holds would add no version, and the snapshot is left as it is. -#}
{%- materialization snapshot, default -%}
    {%- if not (model.config.meta or {}).get('snapshot_if_updated') -%}
        {{ return(dbt.materialization_snapshot_default()) }}
    {%- endif -%}
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
