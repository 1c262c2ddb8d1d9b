-- The 公民身份号码 rule checks the whole region part (地址码, the first six digits) against the national
-- administrative division list (GB/T 2260, historical codes included: a number keeps the code of the
-- place and year it was issued) — the same list as the 空间地理 base (huiju/divisions.py, the pinned
-- python-stdnum's; dbt seed basic_admin_division). The list reaches SQL as a bitmap of the 1,000,000
-- six-digit codes in ops.division_code_bitmap(), an immutable constant the planner folds once per
-- statement: one get_bit per value, no join. The warehouse bootstrap (huiju.warehouse._bootstrap_divisions)
-- writes it from the list and rewrites it when the list changes; until then it is null and only the
-- province (first two digits) is checked, as before.
create or replace function ops.division_code_bitmap() returns bytea
language sql immutable parallel safe
as $$ select null::bytea $$;

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
             -- the whole region part (地址码): a code of the national division list, current or historical
             or not coalesce(get_bit(ops.division_code_bitmap(), substr(c, 1, 6)::integer) = 1, true)
             then 'region'
        when ymd < 19000101 or not ops.is_ymd(ymd / 10000, ymd / 100 % 100, ymd % 100)
             or make_date(ymd / 10000, ymd / 100 % 100, ymd % 100) > current_date then 'birth_date'
        when n = 18 and substr('10X98765432', 1 + ops.id_number_weighted_sum(b) % 11, 1)
                        <> substr(c, 18, 1) then 'check'
    end;
end
$$;
