{#-
    Withdrawals (撤回): raw rows of records a department deleted at the source (ops.withdrawals,
    huiju/sql/250_withdrawals.sql; written by the front-end database channel's snapshot mode).

    * published_rows() (macros/staging.sql) leaves withdrawn rows out, as it leaves quarantined ones;
    * delete_withdrawn(), a pre-hook of every landing staging model, of the credit records and of the
      analysis facts (the staging folder's, credit/records' and analysis/facts' +pre-hook in
      dbt_project.yml), deletes the rows they already hold that were withdrawn since: staging and the
      facts the withdrawn versions, the credit records a record whose current version was withdrawn. The hooks of incremental_when_published run even
      when a model is left as it is, so a withdrawal takes effect at the next build whatever was
      published; the credit and share views read the records, so the record leaves them too.

    Each delete is one probe per withdrawn row through the model's (load_id, source_row_no) index;
    a model of these folders without those columns (a newcomer's) is left alone.

    The models recomputed key by key (basic, thematic, archive: macros/registers.sql) learn from
    withdrawn_keys() which keys a withdrawal touched — a withdrawal publishes nothing, so without it
    a registration deleted at the source would stay in basic_legal_person — and
    incremental_when_published runs them when a withdrawal is newer than what they hold
    (nothing_published_since_built()).
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

{#-
    withdrawn_keys(columns, column): the keys (统一社会信用代码, ID numbers) named by raw rows withdrawn after the
    model's watermark on ``column`` (macros/incremental.sql) — ``columns``: {dataset: [its key fields]} — read
    from raw as staging reads them (codes: ops.normalise_code). By the time a model reads staging, its
    pre-hook has deleted those rows, so the keys they named are found here. One probe of ops.withdrawals'
    (dataset, withdrawn_at) index per dataset, then raw's index by load and row (BRIN) for the rows found.
    A dataset no department has delivered yet (no raw table) names none.
-#}
{% macro withdrawn_keys(columns, column='last_published_at') -%}
    {%- set selects = [] -%}
    {%- for dataset, fields in columns.items() -%}
        {%- set raw = source('landing', dataset) -%}
        {%- if execute and adapter.get_relation(database=raw.database, schema=raw.schema,
                                                identifier=raw.identifier) -%}
            {%- for field in fields -%}
                {%- do selects.append(
                    "select ops.normalise_code(raw." ~ adapter.quote(field) ~ ") from " ~ raw ~ " as raw"
                    ~ " inner join " ~ source('ledger', 'withdrawals') ~ " as withdrawn"
                    ~ " on raw._load_id = withdrawn.load_id and raw._row_no = withdrawn.row_no"
                    ~ " where withdrawn.dataset = '" ~ dataset ~ "' and withdrawn.withdrawn_at > " ~ watermark(column)
                    ~ " and raw." ~ adapter.quote(field) ~ " is not null") -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if selects -%}
    {{ selects | join(' union ') }}
    {%- else -%}
    select null::text where false
    {%- endif -%}
{%- endmacro %}

{#- The key fields of every dataset that names a legal person (统一社会信用代码), for withdrawn_keys(). -#}
{% macro uscc_fields() -%}
    {{ return({
        'enterprise_registration': ['uscc'], 'tax_registration': ['uscc'], 'social_org_registration': ['uscc'],
        'admin_penalty': ['uscc', 'authority_uscc'], 'admin_license': ['uscc', 'authority_uscc'],
        'credit_list': ['uscc'], 'social_insurance': ['unit_uscc'],
    }) }}
{%- endmacro %}

{#- The key fields of every dataset that names a person (公民身份号码), for withdrawn_keys(). -#}
{% macro id_number_fields() -%}
    {{ return({
        'household_registration': ['id_number'], 'social_insurance': ['id_number'], 'credit_list': ['id_number'],
        'enterprise_registration': ['legal_rep_id_no'], 'tax_registration': ['legal_rep_id_no'],
        'social_org_registration': ['legal_rep_id_no'], 'admin_penalty': ['legal_rep_id_no'],
        'admin_license': ['legal_rep_id_no'],
    }) }}
{%- endmacro %}
