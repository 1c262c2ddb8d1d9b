{#-
    published_rows(dataset, fields): the rows of every published batch of ``dataset`` that passed
    validation (quarantined rows left out), as received (text), with the batch's source,
    department, publication time and ``serial_epoch`` (the workbook's date system for an Excel
    batch, recorded by validation; NULL otherwise: ops.parse_date_cn then reads no serials). In an
    incremental model, only the batches published after the newest one it holds
    (macros/incremental.sql: watermark).

    The new batches' ids are fetched first and written as literals: raw holds batches of very
    different sizes, and only with the ids in hand can the planner see that the day's are small
    and read them through raw's _load_id index rather than scan every batch.

    A dataset no department has delivered yet has no raw table (landing creates it with the first
    batch): the model is then built empty, typed as text, and fills on the first run after it.
-#}
{% macro published_rows(dataset, fields) -%}
{%- set raw = source('raw', dataset) -%}
{%- set present = adapter.get_relation(database=raw.database, schema=raw.schema, identifier=raw.identifier)
    if execute else none -%}
{%- set new_loads = [] -%}
{%- if is_incremental() and execute -%}
    {%- set query -%}
        select load_id from {{ source('ops', 'loads') }}
        where status = 'published' and dataset = '{{ dataset }}' and published_at > {{ watermark('published_at') }}
    {%- endset -%}
    {%- set new_loads = run_query(query).columns[0].values() -%}
{%- endif -%}
with loads as (
    select load_id, source_id, department, published_at, serial_epoch
    from {{ source('ops', 'loads') }}
    where
        status = 'published'
        and dataset = '{{ dataset }}'
        {% if is_incremental() -%}
        and published_at > {{ watermark('published_at') }}
        {%- endif %}
),

received as (
    {%- if present %}
    select
        {% for field in fields %}raw.{{ field }}, {% endfor %}
        raw._load_id,
        raw._row_no,
        loads.source_id,
        loads.department,
        loads.published_at,
        loads.serial_epoch
    from {{ raw }} as raw
    inner join loads on raw._load_id = loads.load_id
    where
        {% if is_incremental() -%}
        raw._load_id = any(array[{% for load_id in new_loads %}'{{ load_id | replace("'", "''") }}'{{ ", " if not loop.last }}{% endfor %}]::text[])
        and
        {% endif -%}
        not exists (
            select 1 from {{ source('quarantine', 'rows') }} as q
            where q.load_id = raw._load_id and q.row_no = raw._row_no
        )
    {%- else %}
    select
        {% for field in fields %}null::text as {{ field }}, {% endfor %}
        null::text as _load_id,
        null::integer as _row_no,
        loads.source_id,
        loads.department,
        loads.published_at,
        loads.serial_epoch
    from loads
    where false
    {%- endif %}
)
{%- endmacro %}

{#- The config every staging model of a collected dataset shares (one row per received row). -#}
{% macro staging_config(key_column) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['load_id', 'source_row_no'],
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['load_id', 'source_row_no'], 'unique': True},
            {'columns': [key_column]},
            {'columns': ['published_at']},
        ],
    ) }}
{%- endmacro %}
