-- Issue 15: the platform never connects as a superuser. The bootstrap (huiju.warehouse.bootstrap, the
-- only superuser use) hands the warehouse to the owner role huiju_owner (LOGIN CREATEROLE, not a
-- superuser), which runs every migration from then on, this one included.
--
-- Default privileges belong to the role that creates the objects: 160_roles.sql gave them for the role
-- that ran it — a superuser, on a warehouse migrated before the owner existed. The same are given here
-- for the owner (copied from the catalogue, so they never drift from 160's), so a table a later migration
-- adds to ops, quarantine, dbt_state or portal is granted as before. Nothing to copy on a new warehouse.
do $$
declare
    entry record;
begin
    for entry in
        select n.nspname, case d.defaclobjtype when 'r' then 'tables' when 'S' then 'sequences'
                                               when 'f' then 'functions' when 'T' then 'types' end as objects,
               pg_get_userbyid(acl.grantee) as grantee, string_agg(acl.privilege_type, ', ') as privileges
        from pg_default_acl d
        join pg_roles r on r.oid = d.defaclrole
        join pg_namespace n on n.oid = d.defaclnamespace
        cross join lateral aclexplode(d.defaclacl) acl
        where r.rolsuper and acl.grantee <> 0 and acl.grantee <> d.defaclrole and r.rolname <> current_user
        group by n.nspname, d.defaclobjtype, acl.grantee
    loop
        execute format('alter default privileges in schema %I grant %s on %s to %I',
                       entry.nspname, entry.privileges, entry.objects, entry.grantee);
    end loop;
end
$$;
