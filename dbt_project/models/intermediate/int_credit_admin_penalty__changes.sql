-- The credit records published since the history snapshot (snap_credit_admin_penalty) last took
-- them in: what the snapshot has to compare, so its daily cost follows the day's changes rather
-- than the size of the credit database. The snapshot is looked up by name, not ref(): it depends
-- on this view. Before the snapshot exists, every record is a change.
{%- set history = adapter.get_relation(database=target.database, schema='credit',
                                       identifier='snap_credit_admin_penalty') if execute else none %}

select * from {{ ref('credit_admin_penalty') }}
{% if history is not none -%}
where published_at > (
    select coalesce(max(dbt_updated_at), '-infinity'::timestamptz) - interval '{{ var("incremental_lookback") }}'
    from {{ history }}
)
{%- endif %}
