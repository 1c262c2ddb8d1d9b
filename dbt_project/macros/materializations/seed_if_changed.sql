{#-
    seed_if_changed: a seed that opts in through its meta (seeds/_seeds.yml: `meta: {seed_if_changed: true}`)
    is loaded again only when its file changed (dbt's checksum of it, kept with its description, columns
    and config in dbt_state.relation_fingerprint, see view_if_changed.sql). dbt requires a seed to be
    materialized 'seed', so this wraps dbt's own seed materialization; every other seed goes straight
    through dbt's. A --full-refresh build, and a seed's first load, always go through dbt's own.
    Set on basic_admin_division (the national division list, ~6,900 rows), whose reload took 176 of
    392 node-seconds of the daily build (dbt_project/README.md, "Departures from stock dbt").
-#}
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
