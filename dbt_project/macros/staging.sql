{#-
    published_rows(dataset, fields): a select of the rows of every published batch of ``dataset``
    that passed validation (quarantined and withdrawn rows left out: macros/withdrawals.sql), as received (text): the dataset's ``fields``,
    the batch's ``_load_id`` and the row's ``_row_no``, its ``source_id``, ``department``, ``origin``
    (本地, or 省回流 for the province's backflow: ops.loads, migration 191) and ``published_at``, and ``serial_epoch`` (the workbook's date system for an Excel batch, recorded
    by validation; NULL otherwise: ops.parse_date_cn then reads no serials). Every staging model
    reads it in its first CTE, ``received``, and renames and casts it in the next, ``renamed``,
    reading values as validation reads them (huiju/sql/040_feedback.sql): codes NFKC, trimmed and
    upper-case (ops.normalise_code); text NFKC and trimmed, NULL when blank (ops.normalise_text);
    numbers and dates after NFKC, a workbook's date serials with its own date system
    (ops.parse_number_cn, ops.parse_date_cn).
    In an incremental run, only the batches published after the newest one the model holds
    (macros/incremental.sql: watermark).

    The new batches' ids are fetched first and written as literals: raw holds batches of very
    different sizes, and only with the ids in hand can the planner see that the day's are small
    and read them through raw's index by load (BRIN, huiju/landing/raw.py) rather than scan every batch.

    A dataset no department has delivered yet has no raw table (landing creates it with the first
    batch): the model is then built empty, typed as text, and fills on the first run after it.
-#}
{% macro published_rows(dataset, fields) -%}
    {%- set raw = source('landing', dataset) -%}
    {%- set present = adapter.get_relation(database=raw.database, schema=raw.schema, identifier=raw.identifier)
        if execute else none -%}
    {%- set new_loads = [] -%}
    {%- if is_incremental() and execute -%}
        {%- set query -%}
            select load_id from {{ source('ledger', 'loads') }}
            where status = 'published' and dataset = '{{ dataset }}' and published_at > {{ watermark('published_at') }}
        {%- endset -%}
        {%- set new_loads = run_query(query).columns[0].values() -%}
    {%- endif %}
    with

    loads as (
        select
            load_id,
            source_id,
            department,
            origin,
            published_at,
            serial_epoch
        from {{ source('ledger', 'loads') }}
        where
            status = 'published'
            and dataset = '{{ dataset }}'
            {% if is_incremental() -%}
            and published_at > {{ watermark('published_at') }}
            {%- endif %}
    )

    {% if present -%}
    select
        {% for field in fields -%}
        raw.{{ field }},
        {% endfor -%}
        raw._load_id,
        raw._row_no,
        loads.source_id,
        loads.department,
        loads.origin,
        loads.published_at,
        loads.serial_epoch
    from {{ raw }} as raw
    inner join loads on raw._load_id = loads.load_id
    where
        {% if is_incremental() -%}
        raw._load_id = any(array[
            {%- for load_id in new_loads %}'{{ load_id | replace("'", "''") }}'{{ ", " if not loop.last }}{% endfor -%}
        ]::text [])
        and
        {% endif -%}
        not exists (
            select 1 from {{ source('quarantine', 'rows') }} as quarantined
            where quarantined.load_id = raw._load_id and quarantined.row_no = raw._row_no
        )
        and {{ not_withdrawn('raw') }}
    {%- else -%}
    select
        {% for field in fields -%}
        null::text as {{ field }},
        {% endfor -%}
        null::text as _load_id,
        null::integer as _row_no,
        loads.source_id,
        loads.department,
        loads.origin,
        loads.published_at,
        loads.serial_epoch
    from loads
    where false
    {%- endif %}
{%- endmacro %}


{#-
    landing_staging_indexes(key_columns): the indexes every landing staging model has — its row key
    (load_id, source_row_no: what an incremental build deletes and inserts by, the folder's
    unique_key), the business key ``key_columns`` the models downstream look a record's versions up
    by, and published_at (what they read their new batches by: macros/incremental.sql). A model sets
    them with ``config(indexes=landing_staging_indexes(['uscc']))``.
-#}
{% macro landing_staging_indexes(key_columns) -%}
    {{ return([
        {'columns': ['load_id', 'source_row_no'], 'unique': True},
        {'columns': key_columns},
        {'columns': ['published_at']},
    ]) }}
{%- endmacro %}


{#-
    landing_staging_model(dataset, fields, codes, numbers, dates, trimmed, renames, expressions): the
    whole of a landing staging model, in the one staging shape (README.md, "One staging shape"):

        with
        received as (<published_rows(dataset, fields)>),
        renamed as (select <each field read as validation reads it>, <lineage columns> from received)
        select * from renamed

    Each of ``fields`` (in the order the model's columns take) is read by what it holds: listed in
    ``codes`` with ops.normalise_code (NFKC, trimmed, upper-case), in ``numbers`` with
    ops.parse_number_cn, in ``dates`` with ops.parse_date_cn (and the batch's serial_epoch), in
    ``trimmed`` only trimmed (a decision or entry number, kept as the key checks compare it, so two
    numbers validation tells apart are never merged), any other as text (ops.normalise_text); a field
    in ``expressions`` by the SQL given there. ``renames`` maps a field to its column's name where the
    two differ. The lineage columns end every select: where each row came from (the department and
    its source, and its origin: 本地 or the province's backflow 省回流), the batch and row it was received as (load_id, source_row_no: the row key) and when
    that batch was published.
-#}
{% macro landing_staging_model(dataset, fields, codes=[], numbers=[], dates=[], trimmed=[], renames={},
                               expressions={}) -%}
    {%- set readers = {
        'code': 'ops.normalise_code({})',
        'number': 'ops.parse_number_cn({})',
        'date': 'ops.parse_date_cn({}, serial_epoch)',
        'trimmed': 'btrim({})',
        'text': 'ops.normalise_text({})',
    } -%}
with

received as (
    {{ published_rows(dataset, fields) | indent(4) }}
),

renamed as (
    select
        {% for field in fields -%}
        {%- set kind = 'code' if field in codes else 'number' if field in numbers else 'date' if field in dates
                       else 'trimmed' if field in trimmed else 'text' -%}
        {{ expressions.get(field, readers[kind].format(field)) }} as {{ renames.get(field, field) }},
        {% endfor -%}
        department as source_department,
        source_id,
        origin,
        _load_id as load_id,
        _row_no as source_row_no,
        published_at
    from received
)

select * from renamed
{%- endmacro %}
