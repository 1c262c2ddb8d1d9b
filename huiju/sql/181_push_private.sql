-- Issue 15 (least privilege) on issue 18's outbox: the payloads a push target receives hold sensitive fields
-- in clear where the target is entitled to them (config/push_targets/*.yaml clear_fields: a credit platform
-- links records by the legal representative's ID number). They left ops, which the landing, validation
-- (monitoring), the transformation and the stewards' dashboard all read, for a schema of their own that
-- only the push component (huiju_push) and the owner can reach.
--
-- push_private.payloads  each payload once, content-addressed: content_hash = sha256 of the canonical JSON
--                        stored in payload (huiju.push.outbox.canonical_json), so a retry, a resend after a
--                        crash and a replay send the same bytes under the same idempotency key, and the
--                        sender verifies them before sending. ops.push_outbox and ops.push_records keep the
--                        hash only; the payload is joined in by it.
--
-- No default privileges name this schema and no migration grants "all tables in schema" across schemas,
-- so a table added here later is the owner's alone until granted (tests/integration/core/test_roles.py
-- checks the catalogue: nobody but huiju_push and the owner holds anything here).

create schema if not exists push_private;
revoke all on schema push_private from public;
grant usage on schema push_private to huiju_push;

create table if not exists push_private.payloads (
    content_hash  text primary key,           -- sha256 of payload's UTF-8 bytes
    payload       text not null               -- the wire record's canonical JSON, byte for byte what is sent
);
revoke all on push_private.payloads from public;
-- No update: a payload is immutable (its key is its hash). Delete: for pruning what no outbox row names.
grant select, insert, delete on push_private.payloads to huiju_push;

-- A warehouse upgraded with rows in the outbox: their payloads move here as jsonb wrote them (keys in
-- jsonb's order, not the canonical one); the sender re-canonicalises a payload whose bytes do not match
-- its hash and sends it only when the content does (huiju.push.sender.wire_payloads).
do $$
begin
    if exists (select from information_schema.columns
               where table_schema = 'ops' and table_name = 'push_outbox' and column_name = 'payload') then
        insert into push_private.payloads (content_hash, payload)
        select distinct on (content_hash) content_hash, payload::text from ops.push_outbox
        order by content_hash, outbox_id desc
        on conflict (content_hash) do nothing;
        alter table ops.push_outbox drop column payload;
    end if;
end
$$;
