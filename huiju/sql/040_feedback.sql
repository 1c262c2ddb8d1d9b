-- Issue 6: the rest of the rule pack, safe normalisation, validation results per
-- expectation, feedback workbooks sent back to departments, and resubmission links.
--
-- Like 010_rules.sql, every *_problem function returns NULL when there is nothing wrong
-- (blank included: emptiness is the required rule's business) or a short problem code the
-- Python side (huiju/validation.py REASONS) turns into a Chinese reason.


-- ---------------------------------------------------------------------------------------
-- Normalisation: read-time only. raw keeps what the department sent, byte for byte; these
-- functions say what a value means, and validation checks that meaning. Only changes that
-- cannot alter meaning are made: Unicode NFKC (full-width ０-９ Ａ-Ｚ （） and the ideographic
-- space become ASCII), trimming, and upper-casing codes. Nothing is guessed.
-- ---------------------------------------------------------------------------------------

-- NFKC; values that are pure ASCII (octets = characters) are already NFKC, which keeps the
-- common path free of normalize()'s cost.
create or replace function ops.nfkc(value text) returns text
language sql immutable parallel safe
as $$
    select case when octet_length(value) = length(value) then value else normalize(value, nfkc) end
$$;

-- Free text as meant: NFKC, trimmed, NULL when blank.
create or replace function ops.normalise_text(value text) returns text
language sql immutable parallel safe
as $$
    select ops.clean_text(ops.nfkc(value))
$$;

-- A code (USCC, organisation code, ID number) as meant: NFKC, trimmed, upper-case ASCII.
create or replace function ops.normalise_code(value text) returns text
language sql immutable parallel safe
as $$
    select upper(ops.clean_text(ops.nfkc(value)) collate "C")
$$;

-- A date as departments write it: the forms ops.parse_date reads (2026-03-05, 2026/3/5,
-- 2026.3.5, 20260305, 2026年3月5日) after NFKC, plus, when the value came from a workbook
-- (serial_epoch given: 1899-12-30 for the 1900 date system, 1904-01-01 for 1904), an Excel
-- date serial kept as a number. A serial from a CSV has no epoch and is not guessed.
create or replace function ops.parse_date_cn(value text, serial_epoch date default null) returns date
language sql immutable parallel safe
as $$
    select coalesce(
        ops.parse_date(ops.nfkc(value)),
        case when serial_epoch is not null and length(ops.clean_text(value)) = 5
                  and ops.is_digits(ops.clean_text(value))
                  -- 1955 .. 2119 in either system: anything else is not a date typed as a number
                  and ops.clean_text(value)::integer between 20000 and 80000
             then serial_epoch + ops.clean_text(value)::integer end)
$$;

-- Why a date is not accepted: 'ambiguous' for day/month/year orders that cannot be told
-- apart (3/5/2026, 26-3-5), 'serial' for a bare number outside a workbook, else 'date'.
create or replace function ops.date_problem_cn(value text, serial_epoch date default null) returns text
language plpgsql immutable parallel safe
as $$
declare
    s text := ops.clean_text(ops.nfkc(value));
begin
    if s is null or ops.parse_date_cn(value, serial_epoch) is not null then
        return null;
    end if;
    if length(s) = 5 and ops.is_digits(s) then
        return 'serial';
    end if;
    -- Year last (3/5/2026 is 3 May in some registers, 5 March in others) or a two-digit
    -- year (26-3-5): several readings, so none is picked.
    if s ~ '^[0-9]{1,2}[-/.][0-9]{1,2}[-/.]([0-9]{2}|[0-9]{4})$' or s ~ '^[0-9]{2}[-/.][0-9]{1,2}[-/.][0-9]{1,2}$' then
        return 'ambiguous';
    end if;
    return 'date';
end
$$;

-- A number as meant (NFKC first: full-width digits are digits); NULL when not a plain number.
create or replace function ops.parse_number_cn(value text) returns numeric
language sql immutable parallel safe
as $$
    select ops.parse_number(ops.nfkc(value))
$$;


-- ---------------------------------------------------------------------------------------
-- Organisation code (组织机构代码), GB 11714-1997: 8 body characters (0-9, A-Z) and a check
-- character (0-9 or X), written with or without the hyphen before it (12345678-9).
-- ---------------------------------------------------------------------------------------
create or replace function ops.org_code_problem(code text) returns text
language plpgsql immutable parallel safe
as $$
declare
    c text := replace(ops.normalise_code(code), '-', '');
begin
    return case
        when c is null then null
        when length(c) <> 9 then 'length'
        when not coalesce(ltrim(ops.text_bytes(left(c, 8)), '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'::bytea)
                          = ''::bytea, false) then 'charset'
        when ops.org_code_check_char(c) is distinct from right(c, 1) then 'check'
    end;
end
$$;


-- ---------------------------------------------------------------------------------------
-- Mainland mobile number (手机号码): 11 digits starting 13-19, optionally +86 / 86 first;
-- spaces and hyphens people type between groups are ignored.
-- ---------------------------------------------------------------------------------------
create or replace function ops.mobile_problem(value text) returns text
language plpgsql immutable parallel safe
as $$
declare
    v text := ops.normalise_code(value);
    c text := replace(replace(replace(v, ' ', ''), '-', ''), '+', '');
begin
    if length(c) = 13 and left(c, 2) = '86' then
        c := substr(c, 3);
    end if;
    return case
        when v is null then null
        -- A number cell: 1.38E+10 has already lost digits.
        when strpos(v, 'E+') > 0 or right(v, 2) = '.0' then 'numeric'
        when length(c) <> 11 or not ops.is_digits(c) then 'format'
        when left(c, 1) <> '1' or substr(c, 2, 1) not in ('3', '4', '5', '6', '7', '8', '9') then 'prefix'
    end;
end
$$;


-- ---------------------------------------------------------------------------------------
-- Ledger additions
-- ---------------------------------------------------------------------------------------

-- A corrected resubmission points at the held (or partly quarantined) batch it corrects:
-- same source, overlapping natural keys among the earlier batch's quarantined rows.
alter table ops.loads add column if not exists resubmission_of text references ops.loads (load_id);

-- One row per expectation per validated batch, as Great Expectations reported it: counts
-- only, never values (sensitive columns are validated with a result format that returns none).
create table if not exists ops.validation_results (
    load_id          text not null references ops.loads (load_id),
    suite            text not null,          -- <source-or-dataset>.<dataset>.<severity>
    expectation      text not null,          -- the expectation's type, e.g. expect_column_values_to_be_valid_uscc
    rule             text not null,
    field            text,
    success          boolean not null,
    unexpected_count integer,
    validated_at     timestamptz not null default now(),
    primary key (load_id, suite, rule, field)
);

-- A batch's validation run: which suite, the normalisations applied at read time
-- ({field: values changed}), where the Data Docs page is.
create table if not exists ops.validation_runs (
    load_id       text primary key references ops.loads (load_id),
    suite         text not null,
    success       boolean not null,
    normalised    jsonb not null default '{}',
    docs_path     text,
    gx_seconds    double precision,
    validated_at  timestamptz not null default now()
);

-- A feedback workbook sent back to the department (问题数据反馈).
create table if not exists ops.feedback (
    load_id       text not null references ops.loads (load_id),
    path          text not null,             -- relative to var/ (outbox), or the attachment's name
    rows          integer not null,          -- problem rows in the workbook
    channel       text not null,             -- how it went back: inbox (outbox folder), sftp, email
    delivered_at  timestamptz not null default now(),
    primary key (load_id, channel)
);
