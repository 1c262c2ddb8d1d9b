{#-
    A relation the monitoring run reads (huiju monitor, the huiju_monitor DAG): since migration 160 it
    connects as huiju_validation (huiju.warehouse.COMPONENT_ROLES), which has no privileges in dbt's
    layers, so such a model grants it usage on its schema and select on itself — a post-hook, after
    every build, since a view built again loses its grants. Nothing where the role does not exist.
-#}
{% macro grant_select_to_monitoring() -%}
do $$
begin
    if exists (select from pg_roles where rolname = 'huiju_validation') then
        grant usage on schema {{ this.schema }} to huiju_validation;
        grant select on {{ this }} to huiju_validation;
    end if;
end
$$
{%- endmacro %}
