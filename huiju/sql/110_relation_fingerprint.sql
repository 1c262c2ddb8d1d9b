-- What each dbt view and seed was last built from (dbt_project/macros/materializations.sql): a
-- daily build leaves one alone when nothing it is made of changed, instead of building it again.
-- The relation's OID ties the row to the relation it describes: one dropped since (e.g. a view
-- dropped by cascade with a table it reads) or created by anything else no longer matches.
create table if not exists dbt_state.relation_fingerprint (
    relation text primary key,
    relation_oid oid not null,
    fingerprint text not null,
    built_at timestamptz not null default now()
);
