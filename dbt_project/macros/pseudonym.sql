{#-
    A person's pseudonymous key: HMAC-SHA256 (RFC 2104) of the normalised ID number under a secret
    key — never a bare hash (18-digit ID numbers are few enough to brute-force a plain hash in hours).

    Written with PostgreSQL's built-in sha256() (11+), so it needs no extension (the embedded
    server has no pgcrypto): HMAC(K, m) = H((K' xor opad) || H((K' xor ipad) || m)). The two padded
    keys are the session settings huiju.pseudonym_ipad / huiju.pseudonym_opad, which
    huiju.transform.dbt_env() derives from HUIJU_PSEUDONYM_KEY and hands every dbt connection
    (libpq PGOPTIONS): the key never appears in compiled SQL, the manifest or the published docs.
    Without them the build fails rather than use a wrong key (and huiju.transform refuses to run
    without HUIJU_PSEUDONYM_KEY, but under the demo switch HUIJU_DEMO=1). Under the demo switch the
    session setting huiju.pseudonym_prefix is 'demo-', and every pseudonym starts with it.
-#}
{% macro pseudonym(id_number) -%}
    coalesce(current_setting('huiju.pseudonym_prefix', true), '') || encode(sha256(
        decode(current_setting('huiju.pseudonym_opad'), 'hex')
        || sha256(decode(current_setting('huiju.pseudonym_ipad'), 'hex') || convert_to(upper(btrim({{ id_number }})), 'UTF8'))
    ), 'hex')
{%- endmacro %}
