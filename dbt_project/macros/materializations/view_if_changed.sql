{#-
    materialized='view_if_changed' — dbt's view materialization, run only when the view would change
    (dbt_project/README.md, "Departures from stock dbt"). A daily build otherwise creates every view
    again whatever the day brought: a new view, two renames, a drop, a comment per column and, in
    the share layer, the contract check, about a tenth of a second each.

    The view is left as it is when it is current: it exists, is the very relation (OID) recorded in
    dbt_state.relation_fingerprint (migration 110) when it was last built, and its fingerprint is
    unchanged — a hash of its compiled SQL, description, columns (descriptions, data types,
    constraints) and config, and of the columns (names and types, in order) of the relations it
    reads as they are now: a column added to an incremental model a view reads with `select *`
    changes what the view shows although the view's own SQL is the same. A view dropped since (dbt
    drops a rebuilt table's dependent views by cascade) no longer matches, and is built again; so is
    every view of a --full-refresh build. (dbt's own materialized_view materialization does the same
    for a materialized view whose configuration is unchanged: nothing.)
-#}
{%- materialization view_if_changed, default -%}
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
