-- Issue 23: raw tables are found by load and row number through a BRIN index, not a btree on _load_id.
-- A raw table landed before this migration is upgraded in place: the BRIN index is built over the
-- rows it holds (one pass, summarising every range) and the btree is dropped; no row is rewritten.
-- The definition is huiju.landing.raw.LOAD_INDEX_METHOD's (kept in step; tests/integration/core/test_raw_upgrade.py).
do $$
begin
    execute coalesce((
        select string_agg(format('create index if not exists %I on raw.%I using brin (_load_id text_bloom_ops,'
                                 ' _row_no int4_minmax_ops) with (pages_per_range = 32);'
                                 ' drop index if exists raw.%I;',
                                 c.relname || '_load_brin', c.relname, c.relname || '_load_id'), ' ')
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'raw' and c.relkind = 'r'
          and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = '_load_id')), '');
end
$$;
