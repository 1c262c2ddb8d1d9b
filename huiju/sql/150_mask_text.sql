-- ops.mask_text(text): the warehouse's side of huiju.masking.mask_text, for the values quarantine
-- keeps of fields that are not themselves sensitive (free text can hold an ID or a mobile number).
--
-- The same patterns as huiju/masking.py: an 18-character ID (17 digits and a digit or X/x), a
-- 15-digit ID, or a mainland mobile (optionally 86 in front), each written with or without one
-- separator (space, dash, no-break or ideographic space) between digits and glued to letters or
-- not. Region (6) and last four of an ID stay, first three and last four of a mobile; the rest
-- becomes '*'. Only failing rows' values pass through it (the lateral unpivot), so the regular
-- expressions do not run over every row.
create or replace function ops.mask_text(value text) returns text
language sql immutable parallel safe
as $$
    select regexp_replace(regexp_replace(regexp_replace(value,
        E'([0-9０-９](?:[- \u00a0\u3000]?[0-9０-９]){5})(?:[- \u00a0\u3000]?[0-9０-９]){8}'
        || E'((?:[- \u00a0\u3000]?[0-9０-９]){3}[- \u00a0\u3000]?[0-9０-９Xx])',
        E'\\1********\\2', 'g'),
        E'([0-9０-９](?:[- \u00a0\u3000]?[0-9０-９]){5})(?:[- \u00a0\u3000]?[0-9０-９]){5}'
        || E'((?:[- \u00a0\u3000]?[0-9０-９]){4})',
        E'\\1*****\\2', 'g'),
        E'((?:(?<![0-9０-９])86[- \u00a0\u3000]?)?1[3-9３-９][- \u00a0\u3000]?[0-9０-９])'
        || E'(?:[- \u00a0\u3000]?[0-9０-９]){4}((?:[- \u00a0\u3000]?[0-9０-９]){4})',
        E'\\1****\\2', 'g')
$$;
