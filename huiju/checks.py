"""The rule pack compiled to SQL over one landed batch: what validation and the GX suites both run.

Each field's rules (required, enumeration, number and plausible range, date, unified social
credit code, ID number, organisation code, mobile number), the dataset's cross-field checks
(决定日期 ≤ 公示截止期) and natural-key duplicates (within the batch, and against what other
sources already published) become :class:`Check` objects (:func:`checks_for`): SQL giving a
row's problem code, and the Chinese reason for each code (from :mod:`huiju.rules`). The same
text is the quarantine statement's column (:func:`build_quarantine_sql`, which writes every
failing row with *all* the rules it broke, the department's own row number and column header,
the value masked where it identifies a citizen; :func:`violations_query` is its select, which
also checks records a person types in the portal before they are stored) and the ``unexpected_rows_query`` of the
dataset's GX expectation (:mod:`huiju.quality.gx`), so the two cannot disagree. Values are read
through the safe normalisation functions (NFKC, trim, upper-case codes, Chinese date forms;
see ``expectations/README.md``); raw is never changed.

Nothing here runs a query: :mod:`huiju.validation` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from psycopg import sql

from huiju.registry import Dataset, DatasetField, Source
from huiju.rules import RULES, SENSITIVE_RULES


@dataclass(frozen=True)
class Check:
    """One rule on one field, as SQL over the batch (see :func:`batch_query`).

    ``problem_sql`` evaluates, for a row of the batch, to a problem code or NULL; the same
    text is the quarantine statement's column and the GX expectation's ``WHERE``, so the two
    cannot disagree.
    """

    field: DatasetField
    header: str
    rule: str
    problem_sql: sql.Composable
    reason_sql: sql.Composable  # the Chinese reason, given that problem code (as ``problem``)
    also: str | None = None  # a second field the rule is about (date_order's ``before``)
    window: bool = False  # uses a window function: not usable in a WHERE clause as it is
    join: sql.Composable | None = None  # a LEFT JOIN onto the batch (alias b) that problem_sql reads

    @property
    def sensitive(self) -> bool:
        """Whether the checked values identify a citizen."""
        return self.field.sensitive or self.rule in SENSITIVE_RULES


def _reason_case(rule: str, header: str, **extra: str) -> sql.Composable:
    checked = RULES[rule]
    cases = [sql.SQL("when {code} then {text}").format(code=sql.Literal(code),
                                                       text=sql.Literal(checked.reason(code, h=header, **extra)))
             for code, text in checked.reasons.items() if "{first}" not in text]
    return sql.SQL("case problem {cases} else {fallback} end").format(
        cases=sql.SQL(" ").join(cases), fallback=sql.Literal(checked.fallback(header)))


def _call(rule: str, *arguments: sql.Composable) -> sql.Composable:
    """A call of the rule's SQL function (:attr:`huiju.rules.Rule.sql_function`): its problem code or NULL."""
    return sql.SQL("{fn}({arguments})").format(fn=sql.SQL(RULES[rule].sql_function or ""),
                                               arguments=sql.SQL(", ").join(arguments))


def _number_text(value: float) -> str:
    return f"{value:g}"


def checks_for(dataset: Dataset, source: Source | None = None) -> list[Check]:
    """Every row-level rule of ``dataset`` (fields delivered by ``source`` only, when given), in order.

    Headers are the department's own (``source``), or the dataset's labels for a dataset-wide suite.
    """
    checks: list[Check] = []
    headers = source.header_for_field if source is not None else {f.name: f.label for f in dataset.fields}
    for f in dataset.fields:
        if f.name not in headers:
            continue  # not delivered by this source: nothing to check (a missing required column fails landing)
        header = headers[f.name]
        column = sql.Identifier(f.name)
        # Blank as ops.clean_text sees it: a cell of ideographic (full-width) or no-break spaces is empty too.
        present = sql.SQL("ops.clean_text({c}) is not null").format(c=column)
        if f.required:
            checks.append(Check(f, header, "required",
                                sql.SQL("case when not ({p}) then 'required' end").format(p=present),
                                _reason_case("required", header)))
        if f.enum:
            value = sql.SQL("ops.normalise_text({c})").format(c=column)
            allowed = sql.Literal(list(f.enum))
            multi = sql.SQL("")
            if f.enum_separator:
                # Only multi-valued cells pay for splitting: the common single value matches first.
                multi = sql.SQL(" and not coalesce(array(select btrim(x) from unnest(string_to_array({v}, {sep})) x)"
                                " <@ {allowed}, false)").format(v=value, sep=sql.Literal(f.enum_separator),
                                                                 allowed=allowed)
            checks.append(Check(f, header, "enum",
                                sql.SQL("case when {v} <> all({allowed}){multi} then 'enum' end").format(
                                    v=value, allowed=allowed, multi=multi),
                                _reason_case("enum", header, allowed="、".join(f.enum))))
        if f.type == "number":
            checks.append(Check(f, header, "number",
                                _call("number", sql.SQL("ops.nfkc({c})").format(c=column)),
                                _reason_case("number", header)))
            if f.min is not None or f.max is not None:
                number = sql.SQL("ops.parse_number_cn({c})").format(c=column)
                cases = []
                if f.max is not None:
                    cases.append(sql.SQL("when {n} > {m} then 'max'").format(n=number, m=sql.Literal(f.max)))
                if f.min is not None:
                    cases.append(sql.SQL("when {n} < {m} then 'min'").format(n=number, m=sql.Literal(f.min)))
                checks.append(Check(f, header, "range",
                                    sql.SQL("case {cases} end").format(cases=sql.SQL(" ").join(cases)),
                                    _reason_case("range", header, max=_number_text(f.max or 0),
                                                 min=_number_text(f.min or 0))))
        if f.type == "date":
            checks.append(Check(f, header, "date",
                                _call("date", column, sql.SQL("_serial_epoch")),
                                _reason_case("date", header)))
        for rule in f.rules:
            checks.append(Check(f, header, rule,
                                _call(rule, sql.SQL("ops.nfkc({c})").format(c=column)),
                                _reason_case(rule, header)))
    for check in dataset.checks:
        if check.rule == "date_order" and check.before in headers and check.after in headers:
            after = dataset.field(check.after)
            checks.append(Check(after, headers[check.after], "date_order", sql.SQL(
                "case when ops.parse_date_cn({b}, _serial_epoch) > ops.parse_date_cn({a}, _serial_epoch)"
                " then 'order' end").format(b=sql.Identifier(check.before), a=sql.Identifier(check.after)),
                _reason_case("date_order", headers[check.after], before=headers[check.before]),
                also=check.before))
    key_fields = [k for k in dataset.natural_key if k in headers]
    if key_fields and len(key_fields) == len(dataset.natural_key):
        first = dataset.field(key_fields[0])
        key = sql.SQL(", ").join(sql.Identifier(k) for k in key_fields)
        all_present = sql.SQL(" and ").join(
            sql.SQL("nullif(btrim({c}), '') is not null").format(c=sql.Identifier(k)) for k in key_fields)
        checks.append(Check(first, headers[key_fields[0]], "duplicate", sql.SQL(
            "case when {all_present} and row_number() over (partition by {key} order by _row_no) > 1"
            " then 'duplicate' end").format(all_present=all_present, key=key),
            sql.SQL("null"), window=True))
        if dataset.unique_published:
            # Keys of published rows (published batches, quarantined rows left out) with the
            # sources that published them, grouped so that each key joins at most once: a hash
            # join, however many rows are published. Only batches of the source's own origin count:
            # the province's backflow (省回流) of a decision a city department sent is the same record
            # (one record in the credit models, of origin 本地), not a conflict, either way round.
            trimmed = [sql.SQL("btrim(p.{c})").format(c=sql.Identifier(k)) for k in key_fields]
            same_origin = (sql.SQL(" and l.origin = {}").format(sql.Literal(source.origin)) if source is not None
                           else sql.SQL(""))
            join = sql.SQL(
                "left join (select {keys}, array_agg(distinct l.source_id) as publishers from {table} p"
                " join ops.loads l on l.load_id = p._load_id and l.status = 'published'{same_origin}"
                " where not exists (select 1 from quarantine.rows q where q.load_id = p._load_id"
                " and q.row_no = p._row_no) group by {group}) pub on {match}").format(
                keys=sql.SQL(", ").join(sql.SQL("{t} as {a}").format(t=t, a=sql.Identifier(f"k_{k}"))
                                        for t, k in zip(trimmed, key_fields, strict=True)),
                table=sql.Identifier("raw", dataset.dataset), same_origin=same_origin,
                group=sql.SQL(", ").join(trimmed),
                match=sql.SQL(" and ").join(sql.SQL("pub.{a} = btrim(b.{c})").format(
                    a=sql.Identifier(f"k_{k}"), c=sql.Identifier(k)) for k in key_fields))
            checks.append(Check(first, headers[key_fields[0]], "published", sql.SQL(
                "case when pub.publishers is not null and pub.publishers <> array[b._source_id]"
                " then 'published' end"), _reason_case("published", headers[key_fields[0]]), join=join))
    return checks


def batch_query(dataset: Dataset, values: dict[str, object] | None = None) -> sql.Composable:
    """The landed batch as the rules see it: raw rows of one load plus the load's context columns.

    Parameters ``load_id``, ``source_id`` and ``serial_epoch`` (the workbook's date system, or
    NULL for text formats) — as placeholders, or inlined as literals when ``values`` are given
    (GX validates exactly this query as its batch).
    """
    def param(name: str) -> sql.Composable:
        return sql.Literal(values[name]) if values is not None else sql.Placeholder(name)

    return sql.SQL("select r.*, {source}::text as _source_id, {epoch}::date as _serial_epoch"
                   " from {table} r where r._load_id = {load}").format(
        source=param("source_id"), epoch=param("serial_epoch"), load=param("load_id"),
        table=sql.Identifier("raw", dataset.dataset))


def _masked_value(check: Check) -> sql.Composable:
    column = sql.Identifier(check.field.name)
    if check.rule == "mobile" or (check.sensitive and check.field.rules and "mobile" in check.field.rules):
        # First three and last four, as banks print them: 138****0001.
        return sql.SQL("case when length(btrim({c})) > 7 then left(btrim({c}), 3) ||"
                       " repeat('*', length(btrim({c})) - 7) || right(btrim({c}), 4)"
                       " else repeat('*', length(coalesce({c}, ''))) end").format(c=column)
    if check.sensitive:
        # Region and last four kept, the rest hidden: matches huiju.masking.mask_id_number.
        return sql.SQL("case when length(btrim({c})) > 8 then left(btrim({c}), 6) ||"
                       " repeat('*', length(btrim({c})) - 10) || right(btrim({c}), 4)"
                       " else repeat('*', length(coalesce({c}, ''))) end").format(c=column)
    # Free text can hold an ID or a mobile number: masked like every text leaving the data path.
    return sql.SQL("left(ops.mask_text({c}), 200)").format(c=column)


def build_quarantine_sql(dataset: Dataset, source: Source) -> sql.Composable:
    """The statement that writes every failing row of one batch to quarantine (parameters: :func:`batch_query`)."""
    # A row quarantined while landing for one of its cells (an error value) keeps that and gains the rules' verdicts.
    return sql.SQL("insert into quarantine.rows (load_id, row_no, dataset, violations, reasons) {violations}"
                   " on conflict (load_id, row_no) do update set violations = quarantine.rows.violations"
                   " || excluded.violations, reasons = quarantine.rows.reasons || '；' || excluded.reasons"
                   " where not quarantine.rows.violations @> excluded.violations").format(
        violations=violations_query(dataset, source, batch_query(dataset)))


def violations_query(dataset: Dataset, source: Source, batch: sql.Composable) -> sql.Composable:
    """Every failing row of ``batch`` with all the rules it broke: ``load_id, row_no, dataset, violations, reasons``.

    ``batch`` is a query with the columns of :func:`batch_query` (the raw table's, plus
    ``_source_id`` and ``_serial_epoch``); quarantine runs this over a landed batch, and
    :func:`huiju.validation.check_records` over records a person is typing, so both read the same rules.
    """
    checks = checks_for(dataset, source)
    problem_columns = [sql.SQL("{p} as {a}").format(p=c.problem_sql, a=sql.Identifier(f"p{i}"))
                       for i, c in enumerate(checks)]
    # Values are masked and cut only for failing rows (in the lateral unpivot), not for every row.
    window_columns = []
    unpivot_rows = []
    for i, c in enumerate(checks):
        if c.rule == "duplicate":
            key = sql.SQL(", ").join(sql.Identifier(k) for k in dataset.natural_key)
            window_columns.append(sql.SQL("(min(b._row_no) over (partition by {key}))::text as {a}").format(
                key=key, a=sql.Identifier(f"first{i}")))
            value: sql.Composable = sql.SQL("first{i}").format(i=sql.SQL(str(i)))
            reason: sql.Composable = sql.SQL("replace({t}, '{{first}}', first{i})").format(
                t=sql.Literal(RULES["duplicate"].reason("duplicate", h=c.header, first="{first}")),
                i=sql.SQL(str(i)))
        else:
            value = _masked_value(c)
            reason = sql.SQL("(select {r} from (select p{i} as problem) x)").format(r=c.reason_sql, i=sql.SQL(str(i)))
        unpivot_rows.append(sql.SQL("({i}, {field}, {header}, {rule}, p{i}, {value}, {reason}, {also})").format(
            i=sql.SQL(str(i)), field=sql.Literal(c.field.name), header=sql.Literal(c.header),
            rule=sql.Literal(c.rule), value=value, reason=reason, also=sql.Literal(c.also)))
    if not checks:
        return sql.SQL("select null::text, null::integer, null::text, null::jsonb, null::text where false")
    any_problem = sql.SQL(" or ").join(sql.SQL("p{i} is not null").format(i=sql.SQL(str(i)))
                                       for i in range(len(checks)))
    return sql.SQL("""
with batch as ({batch}),
checked as (
    select b.*, {problems}{windows}
    from batch b {joins}
),
failing as (
    select * from checked where {any_problem}
),
violations as (
    select f._load_id, f._row_no, u.ord, u.field, u.header, u.rule, u.problem, u.value, u.reason, u.also
    from failing f
    cross join lateral (values {unpivot}) as u(ord, field, header, rule, problem, value, reason, also)
    where u.problem is not null
)
select _load_id, _row_no, {dataset},
       jsonb_agg(jsonb_build_object('field', field, 'header', header, 'rule', rule, 'problem', problem,
                                    'value', value, 'reason', reason)
                 || case when also is null then '{{}}'::jsonb else jsonb_build_object('also', also) end
                 order by ord),
       string_agg(reason, '；' order by ord)
from violations
group by _load_id, _row_no
""").format(
        batch=batch,
        problems=sql.SQL(", ").join(problem_columns),
        windows=sql.SQL("").join(sql.SQL(", {w}").format(w=w) for w in window_columns),
        joins=sql.SQL(" ").join(c.join for c in checks if c.join is not None),
        any_problem=any_problem,
        unpivot=sql.SQL(", ").join(unpivot_rows),
        dataset=sql.Literal(dataset.dataset),
    )


def batch_params(load_id: str, source: Source, serial_epoch: date | None) -> dict[str, object]:
    """Parameters of :func:`batch_query` for one load."""
    return {"load_id": load_id, "source_id": source.id, "serial_epoch": serial_epoch}
