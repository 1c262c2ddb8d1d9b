-- Field rules as SQL functions, so a landed batch validates in one set-based statement.
--
-- Each *_problem function returns NULL when there is nothing wrong (including NULL or blank
-- input: emptiness is the required-field rule's business) and otherwise a short problem
-- code; the Python side maps codes to Chinese reasons, so the codes are a contract.
--
-- Written for speed, because they run over millions of rows:
--  * No regular expressions on the common path (only grouped numbers like 1,234 use
--    one). PostgreSQL builds its regex automaton afresh for every call; a one-line
--    pattern cost more than all the other checks of a row together. The values are
--    ASCII-shaped, so the checks read bytes (ops.text_bytes + get_byte) and test
--    character sets with ltrim on bytea.
--  * The language sql helpers are single expressions without FROM, so the planner
--    inlines them; the plpgsql functions compute the cleaned value once into a variable
--    and hand it to the inlined helpers, in as few statements as they can: each plpgsql
--    statement costs about as much as a dozen operators.
--  * upper(... collate "C") because the database's libc locale makes plain upper()
--    convert every string to wide characters; only ASCII letters matter here.
--  * No exception blocks (a subtransaction per call): whatever could make a cast or
--    make_date raise is ruled out first.


-- Spreadsheet exports and copy-paste from Chinese web pages bring tabs, line breaks,
-- no-break spaces and the ideographic (full-width) space U+3000 along with the value.
create or replace function ops.clean_text(value text) returns text
language sql immutable parallel safe
as $$
    select nullif(btrim(value, E' \t\r\n\u00a0\u3000'), '')
$$;

-- The value's bytes (UTF-8, the database encoding), NULL if it holds a backslash.
-- decode(..., 'escape') only interprets backslashes, and unlike textsend or convert_to it
-- is immutable (so helpers using it inline) and ignores client_encoding.
create or replace function ops.text_bytes(value text) returns bytea
language sql immutable parallel safe
as $$
    select case when strpos(value, '\') = 0 then decode(value, 'escape') end
$$;

-- True when every character is an ASCII digit (also for ''; callers check lengths).
create or replace function ops.is_digits(value text) returns boolean
language sql immutable parallel safe
as $$
    select coalesce(ltrim(ops.text_bytes(value), '0123456789'::bytea) = ''::bytea, false)
$$;

-- True when year/month/day name a real Gregorian date that make_date accepts, so
-- make_date can be called afterwards without an exception block.
create or replace function ops.is_ymd(y integer, m integer, d integer) returns boolean
language sql immutable parallel safe
as $$
    select y between 1 and 9999 and m between 1 and 12 and d >= 1
       and d <= case
                    when m = 2 then case when y % 4 = 0 and (y % 100 <> 0 or y % 400 = 0)
                                         then 29 else 28 end
                    when m in (4, 6, 9, 11) then 30
                    else 31
                end
$$;


-- ---------------------------------------------------------------------------------------
-- Unified social credit code (统一社会信用代码), GB 32100-2015
-- ---------------------------------------------------------------------------------------

-- What the byte at position pos (1-18) of an upper-case code contributes to that code's
-- checks, by byte value ('0' = 48 .. 'Z' = 90; other bytes are out of bounds, giving
-- NULL). Every check but authority and category then costs one lookup per character,
-- which matters at millions of rows. Called with a constant pos inside the functions
-- below, so the planner evaluates it once per plan, not per row. Decimal fields:
--       units   character value x GB/T 17710 MOD 31 weight, mod 31 (weights 3^(i-1)
--               mod 31; the check character's weight is 1, so a valid code sums to 0)
--   thousands   positions 9-16: value (0-9, A=10 .. Z=35) x GB 11714 weight, mod 11;
--               position 17: the organisation code's check value, X = 10 (valid: 0 mod 11)
--     100 000   a letter in the region digits (positions 3-8)
--   1 000 000   a letter other than X as the organisation code's check character
--  10 000 000   a character outside 0-9 A-H J-N P-R T U W-Y (no I O S V Z)
-- The fields cannot overflow into each other: at most 18 x 30, 9 x 10, 6, 1 and 18.
create or replace function ops.uscc_table(pos integer) returns integer[]
language plpgsql immutable parallel safe
as $$
declare
    charset constant text := '0123456789ABCDEFGHJKLMNPQRTUWXY';
    mod31_weights constant integer[] := '{1,3,9,27,19,26,16,17,20,29,25,13,8,24,10,30,28,1}';
    org_weights constant integer[] := '{3,7,9,10,5,8,4,2}';
    t integer[] := array_fill(0, array[43], array[48]);
    value integer;
begin
    for byte in 48 .. 90 loop
        value := strpos(charset, chr(byte)) - 1;
        if value < 0 then
            t[byte] := 10000000;
            continue;
        end if;
        t[byte] := value * mod31_weights[pos] % 31;
        if pos between 3 and 8 and byte > 57 then
            t[byte] := t[byte] + 100000;
        elsif pos between 9 and 16 then
            value := case when byte <= 57 then byte - 48 else byte - 55 end;
            t[byte] := t[byte] + 1000 * (value * org_weights[pos - 8] % 11);
        elsif pos = 17 then
            t[byte] := t[byte] + case when byte <= 57 then 1000 * (byte - 48)
                                      when byte = 88 then 10000  -- X
                                      else 1000000 end;
        end if;
    end loop;
    return t;
end
$$;

-- The contributions of the first 17 characters (bytes of an upper-case code, at least 17).
create or replace function ops.uscc_sum(code bytea) returns integer
language sql immutable parallel safe
as $$
    select (ops.uscc_table(1))[get_byte(code,  0)]
         + (ops.uscc_table(2))[get_byte(code,  1)]
         + (ops.uscc_table(3))[get_byte(code,  2)]
         + (ops.uscc_table(4))[get_byte(code,  3)]
         + (ops.uscc_table(5))[get_byte(code,  4)]
         + (ops.uscc_table(6))[get_byte(code,  5)]
         + (ops.uscc_table(7))[get_byte(code,  6)]
         + (ops.uscc_table(8))[get_byte(code,  7)]
         + (ops.uscc_table(9))[get_byte(code,  8)]
         + (ops.uscc_table(10))[get_byte(code,  9)]
         + (ops.uscc_table(11))[get_byte(code, 10)]
         + (ops.uscc_table(12))[get_byte(code, 11)]
         + (ops.uscc_table(13))[get_byte(code, 12)]
         + (ops.uscc_table(14))[get_byte(code, 13)]
         + (ops.uscc_table(15))[get_byte(code, 14)]
         + (ops.uscc_table(16))[get_byte(code, 15)]
         + (ops.uscc_table(17))[get_byte(code, 16)]
$$;

-- The 18th character the first 17 call for; NULL if they are fewer or outside the set.
-- For generating test data and for callers outside the validation path.
create or replace function ops.uscc_check_char(code text) returns text
language plpgsql immutable parallel safe
as $$
declare
    b bytea := ops.text_bytes(upper(ops.clean_text(code) collate "C"));
    total integer;
begin
    if b is null or length(b) < 17 then
        return null;
    end if;
    total := ops.uscc_sum(b);
    if total is null or total >= 10000000 then
        return null;
    end if;
    return substr('0123456789ABCDEFGHJKLMNPQRTUWXY', 1 + (31 - total % 1000 % 31) % 31, 1);
end
$$;

-- The check character (0-9 or X) of a GB 11714 organisation code (组织机构代码), from its
-- first 8 characters; NULL if they are fewer or not 0-9/A-Z. Standalone organisation codes
-- (pre-2015 registers) may use letters a USCC may not, so this does not go through
-- uscc_table; it is not on the validation path, so it may loop.
create or replace function ops.org_code_check_char(code text) returns text
language plpgsql immutable parallel safe
as $$
declare
    c text := upper(ops.clean_text(code) collate "C");
    weights constant integer[] := '{3,7,9,10,5,8,4,2}';
    value integer;
    total integer := 0;
begin
    if c is null or length(c) < 8 then
        return null;
    end if;
    for i in 1 .. 8 loop
        value := strpos('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ', substr(c, i, 1)) - 1;
        if value < 0 then
            return null;
        end if;
        total := total + value * weights[i];
    end loop;
    return substr('0123456789X0', 1 + 11 - total % 11, 1);
end
$$;

-- Category codes (2nd character) allowed per registration authority (1st character).
-- GB 32100 lists: 1 机构编制 1,2,3,9 | 5 民政 1,2,3,9 | 9 工商 1,2,3 | Y 其他 1.
-- The other authorities (2 外交, 4 文化, 6 旅游, 7 宗教, 8 工会, A 军委改革和编制办公室,
-- N 农业) accept 1,2,3,9: their own lists are short and have grown over time, and
-- rejecting a real code costs more than passing an odd one the check characters still
-- guard. 3 司法行政 also issues 4 司法鉴定机构 and 5 仲裁委员会, so it accepts 1,2,3,4,5,9.
create or replace function ops.uscc_problem(code text) returns text
language plpgsql immutable parallel safe
as $$
declare
    c text := upper(ops.clean_text(code) collate "C");
    b bytea := ops.text_bytes(c);
    total integer := case when octet_length(b) = 18
                          then ops.uscc_sum(b) + (ops.uscc_table(18))[get_byte(b, 17)] end;
begin
    return case
        when c is null then null
        when length(c) <> 18 then 'length'
        when total is null or total >= 10000000 then 'charset'
        when strpos('123456789ANY', left(c, 1)) = 0 then 'authority'
        when strpos(case left(c, 1) when '9' then '123' when 'Y' then '1' when '3' then '123459'
                                    else '1239' end,
                    substr(c, 2, 1)) = 0 then 'category'
        when total / 100000 % 10 > 0 then 'region'
        when total / 1000000 % 10 > 0 or total / 1000 % 100 % 11 <> 0 then 'org_code'
        when total % 1000 % 31 <> 0 then 'check'
    end;
end
$$;


-- ---------------------------------------------------------------------------------------
-- Resident identity card number (公民身份号码), GB 11643-1999
-- ---------------------------------------------------------------------------------------

-- ISO 7064 MOD 11-2 weighted sum of the first 17 digits (weights 2^(18-i) mod 11), read as
-- bytes: the weights add up to 100, so the 17 ASCII '0' offsets come to 4800.
-- Meaningless unless those 17 bytes are digits.
create or replace function ops.id_number_weighted_sum(id bytea) returns integer
language sql immutable parallel safe
as $$
    select get_byte(id,  0) * 7 + get_byte(id,  1) * 9 + get_byte(id,  2) * 10
         + get_byte(id,  3) * 5 + get_byte(id,  4) * 8 + get_byte(id,  5) * 4
         + get_byte(id,  6) * 2 + get_byte(id,  7) * 1 + get_byte(id,  8) * 6
         + get_byte(id,  9) * 3 + get_byte(id, 10) * 7 + get_byte(id, 11) * 9
         + get_byte(id, 12) * 10 + get_byte(id, 13) * 5 + get_byte(id, 14) * 8
         + get_byte(id, 15) * 4 + get_byte(id, 16) * 2
         - 4800
$$;

-- The 18th character the first 17 digits call for: (12 - sum mod 11) mod 11, 10 as X;
-- NULL unless the value starts with 17 digits.
create or replace function ops.id_number_check_char(id text) returns text
language plpgsql immutable parallel safe
as $$
declare
    c text := ops.clean_text(id);
begin
    if c is null or length(c) < 17 or not ops.is_digits(left(c, 17)) then
        return null;
    end if;
    return substr('10X98765432', 1 + ops.id_number_weighted_sum(ops.text_bytes(c)) % 11, 1);
end
$$;

-- A 15-digit number from the first-generation cards (issued until 2013, still found in
-- older registers); NULL for NULL or blank. Says nothing about validity: that is
-- id_number_problem's job.
create or replace function ops.id_number_is_legacy(id text) returns boolean
language sql immutable parallel safe
as $$
    select case when ops.clean_text(id) is not null
                then length(ops.clean_text(id)) = 15 and ops.is_digits(ops.clean_text(id)) end
$$;

-- Stable, not immutable: "born in the future" depends on current_date (and on the
-- session's TimeZone). Declared immutable, a call on a constant could be folded once at
-- plan time, or end up in an index expression or generated column, and its answer would
-- silently go stale. Stable costs nothing in the per-row queries this is written for.
create or replace function ops.id_number_problem(id text) returns text
language plpgsql stable parallel safe
as $$
declare
    c text := upper(ops.clean_text(id) collate "C");
    b bytea := ops.text_bytes(c);
    n integer := octet_length(b);
    rest bytea := ltrim(b, '0123456789'::bytea);  -- '' or 'X' when the shape is right
    ymd integer := case when rest = ''::bytea or rest = 'X'::bytea then
                       case n when 18 then substr(c, 7, 8)::integer
                              when 15 then 19000000 + substr(c, 7, 6)::integer end
                   end;
begin
    return case
        when c is null then null
        -- A number cell in a spreadsheet: the last digits are already lost, so even a
        -- passing check character would be luck, not evidence.
        when strpos(c, 'E+') > 0 or right(c, 2) = '.0' then 'numeric'
        when not coalesce(n = 18 or n = 15 and rest = ''::bytea, false) or ymd is null then 'format'
        when (get_byte(b, 0) - 48) * 10 + get_byte(b, 1) - 48
             not in (11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37,
                     41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83)
             then 'region'
        when ymd < 19000101 or not ops.is_ymd(ymd / 10000, ymd / 100 % 100, ymd % 100)
             or make_date(ymd / 10000, ymd / 100 % 100, ymd % 100) > current_date then 'birth_date'
        when n = 18 and substr('10X98765432', 1 + ops.id_number_weighted_sum(b) % 11, 1)
                        <> substr(c, 18, 1) then 'check'
    end;
end
$$;


-- ---------------------------------------------------------------------------------------
-- Dates and numbers as departments write them
-- ---------------------------------------------------------------------------------------

-- Accepted: YYYY-M-D, YYYY/M/D, YYYY.M.D (one separator used twice, month and day of one
-- or two digits; so YYYY-MM-DD too), YYYYMMDD and YYYY年M月D日. NULL for anything else,
-- or for a day that does not exist.
create or replace function ops.parse_date(value text) returns date
language plpgsql immutable parallel safe
as $$
declare
    s text := ops.clean_text(value);
    sep text;
    rest text;
    mm text;
    dd text;
    y integer;
    m integer;
    d integer;
begin
    if s is null then
        return null;
    end if;
    sep := substr(s, 5, 1);
    if sep in ('-', '/', '.') then
        rest := substr(s, 6);
    elsif sep = '年' and right(s, 1) = '日' then
        rest := substr(s, 6, length(s) - 6);
        sep := '月';
    elsif length(s) = 8 then
        mm := substr(s, 5, 2);
        dd := substr(s, 7, 2);
    else
        return null;
    end if;
    if rest is not null then
        mm := split_part(rest, sep, 1);
        dd := substr(rest, length(mm) + 2);  -- all after the first separator: "1-2-3" fails
    end if;
    if length(mm) not between 1 and 2 or length(dd) not between 1 and 2
       or not ops.is_digits(left(s, 4) || mm || dd) then
        return null;
    end if;
    y := left(s, 4)::integer;
    m := mm::integer;
    d := dd::integer;
    if ops.is_ymd(y, m, d) then
        return make_date(y, m, d);
    end if;
    return null;
end
$$;

create or replace function ops.date_problem(value text) returns text
language sql immutable parallel safe
as $$
    select case when ops.parse_date(value) is null and ops.clean_text(value) is not null
                then 'date' end
$$;

-- A plain decimal: optional sign, digits, optional fraction (".5" and "5." are not plain).
-- Thousands separators must group by three, so that "1,5" (a decimal comma, or a typo)
-- is not read as 15.
create or replace function ops.number_problem(value text) returns text
language plpgsql immutable parallel safe
as $$
declare
    s text := ops.clean_text(value);
    unsigned text;
    whole text;
    fraction text;
begin
    if s is null then
        return null;
    end if;
    unsigned := case when left(s, 1) in ('+', '-') then substr(s, 2) else s end;
    whole := split_part(unsigned, '.', 1);
    fraction := substr(unsigned, length(whole) + 2);
    if whole = ''
       or length(whole) < length(unsigned) and (fraction = '' or not ops.is_digits(fraction)) then
        return 'number';
    end if;
    if ops.is_digits(whole) then
        return null;
    end if;
    -- Only grouped numbers pay for a regex.
    if strpos(whole, ',') > 0 and whole ~ '^[0-9]{1,3}(,[0-9]{3})+$' then
        return null;
    end if;
    return 'number';
end
$$;

create or replace function ops.parse_number(value text) returns numeric
language sql immutable parallel safe
as $$
    select case when ops.number_problem(value) is null
                then replace(ops.clean_text(value), ',', '')::numeric end
$$;
