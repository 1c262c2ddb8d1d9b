{#-
    Withdrawals (撤回): raw rows of records a department deleted at the source (ops.withdrawals,
    huiju/sql/250_withdrawals.sql; written by the front-end database channel's snapshot mode).

    * published_rows() (macros/staging.sql) leaves withdrawn rows out, as it leaves quarantined ones;
    * delete_withdrawn(), a pre-hook of every landing staging model and of the credit records (the
      staging folder's and credit/records' +pre-hook in dbt_project.yml), deletes the rows they
      already hold that were withdrawn since: staging the withdrawn versions, the credit records a
      record whose current version was withdrawn. The hooks of incremental_when_published run even
      when a model is left as it is, so a withdrawal takes effect at the next build whatever was
      published; the credit and share views read the records, so the record leaves them too.

    Each delete is one probe per withdrawn row through the model's (load_id, source_row_no) index;
    a model of these folders without those columns (a newcomer's) is left alone.
-#}
{% macro delete_withdrawn() -%}
    {#- Only a relation with the row key of a landing batch (a newcomer's model in these folders has none). -#}
    {%- set names = adapter.get_columns_in_relation(this) | map(attribute='name') | list
        if execute and is_incremental() else [] -%}
    {%- if 'load_id' in names and 'source_row_no' in names -%}
    delete from {{ this }} as held
    using {{ source('ledger', 'withdrawals') }} as withdrawn
    where held.load_id = withdrawn.load_id and held.source_row_no = withdrawn.row_no
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- A condition on ``raw`` (a raw table's alias): the row was not withdrawn. -#}
{% macro not_withdrawn(raw) -%}
    not exists (
        select 1 from {{ source('ledger', 'withdrawals') }} as withdrawn
        where withdrawn.load_id = {{ raw }}._load_id and withdrawn.row_no = {{ raw }}._row_no
    )
{%- endmacro %}
