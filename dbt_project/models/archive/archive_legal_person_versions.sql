-- 法人基础信息的历史: every version of a legal person's tracked attributes (macros/history.sql: name,
-- type, legal representative, 机关 or not, and the registration — 企业类型, 登记状态, 成立日期,
-- 注册资本, 住所, 纳税人状态, 纳税信用等级), from the build that first saw it (valid_from), and a
-- deletion marker (is_deleted) when a legal person left basic_legal_person (e.g. its only penalty
-- was corrected to another party). Append-only; archive.archive_legal_person_history shows it as a dbt
-- snapshot would (dbt_valid_from / dbt_valid_to).
--
-- A daily build compares only the legal persons whose data was published since the history last
-- looked (touched_uscc() from its own watermark, macros/history.sql), each with its latest version:
-- the cost follows the day's data, not the number of legal persons. It is kept across full
-- refreshes like a snapshot (full_refresh: false); a full refresh compares every legal person
-- instead and records whatever changed (after a change of basic_legal_person's rules, say). Its
-- first build takes over the versions of the dbt snapshot it replaces, if that table is there.
-- depends_on: {{ ref('stg_landing__admin_penalties') }}
-- depends_on: {{ ref('stg_landing__enterprise_registrations') }}, {{ ref('stg_landing__tax_registrations') }}
-- depends_on: {{ ref('stg_landing__social_org_registrations') }}
-- depends_on: {{ ref('stg_landing__social_insurance_enrollments') }}
-- depends_on: {{ ref('stg_landing__admin_licenses') }}, {{ ref('stg_landing__credit_list_entries') }}
{{ config(
    full_refresh=false,
    indexes=[
        {'columns': ['uscc', 'valid_from'], 'unique': True},
        {'columns': ['version_id'], 'unique': True},
        {'columns': ['last_published_at']},
    ],
    post_hook="{{ record_history_watermark() }}",
) }}

{%- set columns = legal_person_history_columns() %}
{%- set compare_all = flags.FULL_REFRESH %}
{%- set snapshot = none %}
{%- if execute and not is_incremental() %}
    {%- set found = adapter.get_relation(database=this.database, schema=this.schema,
                                         identifier='snap_basic_legal_person') %}
    {%- set snapshot = found if found is not none and found.is_table else none %}
{%- endif %}
{%- if is_incremental() %}
{%- do declare_watermark('last_published_at', history_watermark()) %}
{%- endif %}

with
{% if is_incremental() -%}
touched as (
    {% if compare_all -%}
    select uscc as touched_key from {{ ref('basic_legal_person') }}
    union
    select uscc from {{ this }}
    {%- else -%}
    {{ touched_uscc() }}
    union
    select uscc from {{ ref('basic_legal_person') }}
    where last_published_at > {{ watermark('last_published_at') }}
    {%- endif %}
),

latest as (
    -- each touched legal person's latest version (one index probe each)
    select recorded.*
    from touched
    cross join lateral (
        select versions.* from {{ this }} as versions
        where versions.uscc = touched.touched_key
        order by versions.valid_from desc
        limit 1
    ) as recorded
),
{%- elif snapshot is not none %}
{#- The dbt snapshot's versions (check strategy, hard deletes invalidated): a row closed without a
    successor starting at that moment was deleted then. Columns it did not track are left null. -#}
{%- set snapshot_columns = adapter.get_columns_in_relation(snapshot) | map(attribute='name') | list %}
{%- set types = {} %}
{%- for column in adapter.get_columns_in_relation(ref('basic_legal_person')) %}
    {%- do types.update({column.name: column.data_type}) %}
{%- endfor %}
snapshot_versions as (
    select
        uscc,
        {% for column in columns %}{{ column if column in snapshot_columns else 'null' }}::{{ types[column] }} as {{ column }},
        {% endfor -%}
        false as is_deleted,
        dbt_valid_from as valid_from,
        dbt_scd_id as version_id
    from {{ snapshot }}
    union all
    select
        closed.uscc,
        {% for column in columns %}null::{{ types[column] }},
        {% endfor -%}
        true,
        closed.dbt_valid_to,
        md5(closed.dbt_scd_id || '|deleted')
    from {{ snapshot }} as closed
    where closed.dbt_valid_to is not null
      and not exists (
          select 1 from {{ snapshot }} as successor
          where successor.uscc = closed.uscc and successor.dbt_valid_from = closed.dbt_valid_to
      )
),

latest as (
    select distinct on (uscc) * from snapshot_versions order by uscc, valid_from desc
),
{%- endif %}

current_state as (
    select uscc, {{ columns | join(', ') }}
    from {{ ref('basic_legal_person') }}
    {% if is_incremental() -%}
    where uscc in (select touched.touched_key from touched)
    {%- endif %}
),

changes as (
    -- new legal persons, reappearing ones and changed ones
    select
        current_state.*,
        false as is_deleted
    from current_state
    {% if is_incremental() or snapshot is not none -%}
    left join latest on current_state.uscc = latest.uscc
    where
        latest.uscc is null
        or latest.is_deleted
        or (
            {%- for column in columns %}
            current_state.{{ column }}{{ "," if not loop.last }}
            {%- endfor %}
        ) is distinct from (
            {%- for column in columns %}
            latest.{{ column }}{{ "," if not loop.last }}
            {%- endfor %}
        )
    {%- endif %}
    {% if is_incremental() or snapshot is not none -%}
    union all
    -- legal persons no longer in basic_legal_person
    select
        latest.uscc,
        {%- for column in columns %}
        null as {{ column }},
        {%- endfor %}
        true as is_deleted
    from latest
    where
        not latest.is_deleted
        and not exists (
            select 1 from current_state
            where current_state.uscc = latest.uscc
        )
    {%- endif %}
),

final as (
    select
        uscc,
        {{ columns | join(',\n        ') }},
        is_deleted,
        now() as valid_from,
        md5(uscc || '|' || extract(epoch from now())::text) as version_id,
        {{ legal_person_history_horizon() }} as last_published_at
    from changes
    {% if snapshot is not none -%}
    union all
    select
        uscc,
        {{ columns | join(',\n        ') }},
        is_deleted,
        valid_from,
        version_id,
        null
    from snapshot_versions
    {%- endif %}
)

select * from final
