{#-
    Incremental keys beyond the penalties (macros/incremental.sql does those): a legal person or a
    person is recomputed when any dataset that says something about it has a batch published
    after the model's watermark, or a row naming it withdrawn at the source since (withdrawn_keys(),
    macros/withdrawals.sql: a registration deleted at the source leaves the basic layer). Keys are
    taken from every version of a changed record, so a correction that moves a licence or a list
    entry to another subject, or a registration whose legal representative changes, recomputes both
    the old and the new subject.

    A model using these needs `-- depends_on:` comments for the staging models (the refs sit in
    is_incremental() branches, which dbt does not render when it parses).
-#}
{% macro changed_keys(model, key, column) -%}
    select {{ key }} from {{ ref(model) }} where published_at > {{ watermark(column) }}
{%- endmacro %}

{% macro all_versions_of(model, record_key, subject, column) -%}
    select versions.{{ subject }} from {{ ref(model) }} as versions
    where versions.{{ record_key }} in ({{ changed_keys(model, record_key, column) }})
      and versions.{{ subject }} is not null
{%- endmacro %}

{#- USCCs whose legal-person data changed: penalties and licences (parties, authorities), registers, lists, insurance. -#}
{% macro touched_uscc(column='last_published_at') -%}
    {{ touched_keys(['versions.uscc', 'versions.authority_uscc'], column) }}
    union {{ changed_keys('stg_landing__enterprise_registrations', 'uscc', column) }}
    union {{ changed_keys('stg_landing__tax_registrations', 'uscc', column) }}
    union {{ changed_keys('stg_landing__social_org_registrations', 'uscc', column) }}
    union {{ changed_keys('stg_landing__social_insurance_enrollments', 'unit_uscc', column) }}
    union {{ all_versions_of('stg_landing__admin_licenses', 'decision_no', 'uscc', column) }}
    union {{ all_versions_of('stg_landing__admin_licenses', 'decision_no', 'authority_uscc', column) }}
    union {{ all_versions_of('stg_landing__credit_list_entries', 'entry_no', 'uscc', column) }}
    union {{ withdrawn_keys(uscc_fields(), column) }}
{%- endmacro %}

{#- ID numbers whose person data changed: 户籍, insurance, legal representatives (all sources), list entries. -#}
{% macro touched_id_numbers(column='last_published_at') -%}
    {{ touched_keys(['versions.legal_rep_id_no'], column) }}
    union {{ changed_keys('stg_landing__household_registrations', 'id_number', column) }}
    union {{ changed_keys('stg_landing__social_insurance_enrollments', 'id_number', column) }}
    union {{ all_versions_of('stg_landing__enterprise_registrations', 'uscc', 'legal_rep_id_no', column) }}
    union {{ all_versions_of('stg_landing__tax_registrations', 'uscc', 'legal_rep_id_no', column) }}
    union {{ all_versions_of('stg_landing__social_org_registrations', 'uscc', 'legal_rep_id_no', column) }}
    union {{ all_versions_of('stg_landing__admin_licenses', 'decision_no', 'legal_rep_id_no', column) }}
    union {{ all_versions_of('stg_landing__credit_list_entries', 'entry_no', 'id_number', column) }}
    union {{ withdrawn_keys(id_number_fields(), column) }}
{%- endmacro %}

{#- Employers (参保单位) touched: their legal-person data, or the 户籍 of a person they insure
    (thematic_social_insurance counts the registered residents among the insured). -#}
{% macro touched_insurance_units(column='last_published_at') -%}
    {{ touched_uscc(column) }}
    union
    select versions.unit_uscc from {{ ref('stg_landing__social_insurance_enrollments') }} as versions
    where versions.id_number in ({{ changed_keys('stg_landing__household_registrations', 'id_number', column) }}
                                 union {{ withdrawn_keys({'household_registration': ['id_number']}, column) }})
{%- endmacro %}

{#- Pre-hooks: remove the touched keys' rows before they are recomputed from all their data. -#}
{% macro delete_touched_uscc(key_column='uscc', insurance_units=false) -%}
    {%- if is_incremental() -%}
    delete from {{ this }} where {{ key_column }} in ({{ touched_insurance_units() if insurance_units else touched_uscc() }})
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#-
    Models of few rows that each aggregate a whole dataset (e.g. per 行政区划) cannot be recomputed
    key by key for less than the whole; they are recomputed whole, but only by a build that has
    something new for them: changed_since_built(models) is true when any of these staging models has a
    batch published after the newest one the model holds (watermark on last_published_at), and
    always outside an incremental run. delete_all_if_changed() is the matching pre-hook.
-#}
{% macro changed_since_built(models) -%}
    {%- if not is_incremental() or not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set query -%}
        select {% for model in models %}exists (select 1 from {{ ref(model) }} where published_at > {{ watermark('last_published_at') }}){{ " or " if not loop.last }}{% endfor %}
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0]) }}
{%- endmacro %}

{% macro delete_all_if_changed(models) -%}
    {%- if is_incremental() and changed_since_built(models) -%}
    delete from {{ this }}
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{% macro delete_touched_persons() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} where person_key in (
        select {{ pseudonym('touched.touched_key') }} from ({{ touched_id_numbers() }}) as touched (touched_key))
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- The latest version of each record of a staging model (the same order credit_admin_penalty uses). -#}
{% macro latest_versions(model, key_columns, where=none) -%}
    select distinct on ({{ key_columns | join(', ') }}) *
    from {{ ref(model) }}
    {% if where %}where {{ where }}{% endif %}
    order by {{ key_columns | join(', ') }}, published_at desc, load_id desc, source_row_no desc
{%- endmacro %}

{#- The latest version of each list entry naming a person (an ID number); in an incremental run, of
    the entries with a version naming a touched ID number (chosen before the versions are ranked), and
    only where the latest names one. -#}
{%- macro latest_entries_naming_persons() -%}
    select * from ({{ latest_versions('stg_landing__credit_list_entries', ['entry_no'],
        "entry_no in (select entry_no from " ~ ref('stg_landing__credit_list_entries')
        ~ " where id_number in (select touched.touched_key from touched))" if is_incremental() else none) }}) as latest
    where id_number is not null {{ population_only_touched('id_number') }}
{%- endmacro %}

{#- basic_population: a filter on the touched ID numbers, and the legal representatives of a register. -#}
{%- macro population_only_touched(column) -%}
    {%- if is_incremental() %} and {{ column }} in (select touched.touched_key from touched){% endif -%}
{%- endmacro %}
{%- macro population_register_reps(model) -%}
    select
        legal_rep_id_no as id_number, legal_rep as person_name, null::text as gender, null::date as birth_date,
        null::text as region_code, null::text as ethnicity, null::text as household_status,
        '法定代表人' as person_role, uscc, source_department, 3 as kind_rank, published_at,
        load_id || ':' || source_row_no as record_key
    from ({{ latest_versions(model, ['uscc'],
        "uscc in (select uscc from " ~ ref(model) ~ " where legal_rep_id_no in (select touched.touched_key from touched))"
        if is_incremental() else none) }}) as registered
    where legal_rep_id_no is not null {{ population_only_touched('legal_rep_id_no') }}
{%- endmacro %}


{#- The value of `column` from the contribution that ranks first by `order` among those where
    `present` (default: the column itself) is not null; basic_legal_person's precedence rule. -#}
{%- macro first_by_precedence(column, order, present=none) -%}
    (array_agg({{ column }} order by {{ order }}) filter (where {{ present or column }} is not null))[1]
{%- endmacro %}
