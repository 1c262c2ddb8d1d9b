-- History (SCD2) of the legal-person base, with the columns of a dbt snapshot: each version of a
-- legal person's tracked attributes valid from dbt_valid_from until the next version, or until it
-- left the base, was recorded (dbt_valid_to; null: still current). What was known on a date:
--   select * from archive.archive_legal_person_history
--   where dbt_valid_from <= '2026-11-20' and coalesce(dbt_valid_to, 'infinity') > '2026-11-20'
-- A view of the append-only archive_legal_person_versions (which replaced the dbt snapshot of this
-- name): valid_to is the next version's valid_from, so nothing recorded is ever rewritten.
{{ config(materialized='view_if_changed') }}

{%- set columns = legal_person_history_columns() %}

with versions as (
    select
        *,
        lead(valid_from) over (partition by uscc order by valid_from) as valid_to
    from {{ ref('archive_legal_person_versions') }}
),

final as (
    select
        uscc,
        {{ columns | join(',\n        ') }},
        version_id as dbt_scd_id,
        valid_from as dbt_updated_at,
        valid_from as dbt_valid_from,
        valid_to as dbt_valid_to
    from versions
    where not is_deleted
)

select * from final
