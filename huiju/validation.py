"""Validation of a landed batch: every row checked against its dataset's rules, in the warehouse.

Each field's rules (required, enumeration, number and plausible range, date, unified social
credit code, ID number, organisation code, mobile number), the dataset's cross-field checks
(决定日期 ≤ 公示截止期) and natural-key duplicates (within the batch, and against what other
sources already published) are compiled into one set-based SQL statement per batch: every
failing row is written to ``quarantine.rows`` with *all* the rules it broke, the
department's own row number and column header, the value (masked where it identifies a
citizen) and a reason in Chinese a clerk can act on. Values are read through the safe
normalisation functions (NFKC, trim, upper-case codes, Chinese date forms; see
``expectations/README.md``); raw is never changed.

Each rule's SQL (:func:`checks_for`) is also the ``unexpected_rows_query`` of a Great
Expectations expectation in the reviewed suite ``expectations/<dataset>.<dataset>.critical.json``;
GX runs it over the same batch (:func:`batch_query`) and records per-expectation counts and
Data Docs (:mod:`huiju.quality.gx`).

A batch whose failure rate is within the source's tolerance becomes ``validated`` (its good
rows go on); above it, ``held``: nothing of it is published."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from huiju.ledger import get_load, set_status
from huiju.registry import Dataset, DatasetField, Registry, Source
from huiju.rules import FIELD_RULES, RULES, SENSITIVE_RULES

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validating one batch."""

    load_id: str
    status: str  # validated | held (or the status it already had)
    rows_received: int
    rows_accepted: int
    rows_quarantined: int
    tolerance: float

    @property
    def failure_rate(self) -> float:
        """Share of received rows that were quarantined."""
        return self.rows_quarantined / self.rows_received if self.rows_received else 0.0


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
        present = sql.SQL("nullif(btrim({c}), '') is not null").format(c=column)
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
            # join, however many rows are published.
            trimmed = [sql.SQL("btrim(p.{c})").format(c=sql.Identifier(k)) for k in key_fields]
            join = sql.SQL(
                "left join (select {keys}, array_agg(distinct l.source_id) as publishers from {table} p"
                " join ops.loads l on l.load_id = p._load_id and l.status = 'published'"
                " where not exists (select 1 from quarantine.rows q where q.load_id = p._load_id"
                " and q.row_no = p._row_no) group by {group}) pub on {match}").format(
                keys=sql.SQL(", ").join(sql.SQL("{t} as {a}").format(t=t, a=sql.Identifier(f"k_{k}"))
                                        for t, k in zip(trimmed, key_fields, strict=True)),
                table=sql.Identifier("raw", dataset.dataset),
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
    return sql.SQL("left({c}, 200)").format(c=column)


def build_quarantine_sql(dataset: Dataset, source: Source) -> sql.Composable:
    """The statement that writes every failing row of one batch to quarantine (parameters: :func:`batch_query`)."""
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
        return sql.SQL("select 1 where false")
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
insert into quarantine.rows (load_id, row_no, dataset, violations, reasons)
select _load_id, _row_no, {dataset},
       jsonb_agg(jsonb_build_object('field', field, 'header', header, 'rule', rule, 'problem', problem,
                                    'value', value, 'reason', reason)
                 || case when also is null then '{{}}'::jsonb else jsonb_build_object('also', also) end
                 order by ord),
       string_agg(reason, '；' order by ord)
from violations
group by _load_id, _row_no
on conflict (load_id, row_no) do nothing
""").format(
        batch=batch_query(dataset),
        problems=sql.SQL(", ").join(problem_columns),
        windows=sql.SQL("").join(sql.SQL(", {w}").format(w=w) for w in window_columns),
        joins=sql.SQL(" ").join(c.join for c in checks if c.join is not None),
        any_problem=any_problem,
        unpivot=sql.SQL(", ").join(unpivot_rows),
        dataset=sql.Literal(dataset.dataset),
    )


# What a read-time normalisation did to a value, as SQL over one raw value {c} (NULL never counts);
# templates of psycopg's sql.SQL, so literal braces are doubled.
_NORMALISATIONS: dict[str, str] = {
    # Full-width digits, letters, brackets, the ideographic space: only non-ASCII values can change.
    "nfkc": "octet_length({c}) <> length({c}) and {c} is not nfkc normalized",
    "trim": "{c} <> btrim({c}, E' \\t\\r\\n\\u00a0\\u3000')",
    "upper": "{c} collate \"C\" <> upper({c} collate \"C\")",
    # 2026年3月5日, 2026/3/5, 20260305, an Excel serial: read as a date, though not written as 2026-03-05.
    "date_form": ("ops.clean_text(ops.nfkc({c})) !~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$'"
                  " and ops.parse_date_cn({c}, _serial_epoch) is not null"),
}


def normalisation_counts(conn: psycopg.Connection, dataset: Dataset, source: Source,
                         params: dict[str, object]) -> dict[str, dict[str, int]]:
    """Per delivered field, how many values each read-time normalisation changed; counts only, never values.

    ``{"uscc": {"nfkc": 3, "upper": 1}, "decision_date": {"date_form": 12}}`` (zeros left out):
    what the rules (``ops.normalise_text`` / ``ops.normalise_code`` / ``ops.parse_date_cn``) read
    differently from the bytes the department sent. One scan of the batch.
    """
    columns: list[sql.Composable] = []
    keys: list[tuple[str, str]] = []
    for f in dataset.fields:
        if f.name not in source.header_for_field:
            continue
        # Only what the rules read: NFKC for values they interpret (codes, enumerations, numbers,
        # dates); trimming for every checked field; free text without checks is not read at all.
        interpreted = bool(f.enum or f.rules or f.type in ("number", "date"))
        kinds = (["nfkc"] if interpreted else []) + (["trim"] if interpreted or f.required else [])
        if set(FIELD_RULES) & set(f.rules):  # codes: read upper-cased
            kinds.append("upper")
        if f.type == "date":
            kinds.append("date_form")
        for kind in kinds:
            condition = sql.SQL(_NORMALISATIONS[kind]).format(c=sql.Identifier(f.name))
            columns.append(sql.SQL("count(*) filter (where {cond})").format(cond=condition))
            keys.append((f.name, kind))
    if not columns:
        return {}
    row = conn.execute(sql.SQL("select {cols} from ({batch}) b").format(
        cols=sql.SQL(", ").join(columns), batch=batch_query(dataset)), params).fetchone()
    counts: dict[str, dict[str, int]] = {}
    for (field, kind), count in zip(keys, row, strict=True):
        if count:
            counts.setdefault(field, {})[kind] = int(count)
    return counts


def workbook_epoch(path: Path) -> date:
    """The date a workbook's serial 0 stands for: 1899-12-30, or 1904-01-01 for the 1904 date system (old Mac Excel)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        head = archive.read("xl/workbook.xml")[:4096]
    return date(1904, 1, 1) if re.search(rb'date1904="(1|true)"', head) else date(1899, 12, 30)


def _serial_epoch(conn: psycopg.Connection, source: Source, load_id: str) -> date | None:
    """The workbook's epoch for an Excel source (serials are read with it); None for text formats."""
    if source.format != "xlsx":
        return None
    row = conn.execute("select archive_path from ops.loads where load_id = %s", (load_id,)).fetchone()
    if not row or not row[0]:
        return None
    from huiju.archive import archived_path

    try:
        return workbook_epoch(archived_path(row[0]))
    except (OSError, KeyError, ValueError):  # not a zip workbook after all: serials stay unreadable
        return None


def batch_params(load_id: str, source: Source, serial_epoch: date | None) -> dict[str, object]:
    """Parameters of :func:`batch_query` for one load."""
    return {"load_id": load_id, "source_id": source.id, "serial_epoch": serial_epoch}


def link_resubmission(conn: psycopg.Connection, dataset: Dataset, source: Source, load_id: str) -> str | None:
    """Link a batch to the earlier batch of the same source it corrects, if any; return that batch's id.

    A correction is recognised by its natural keys: the latest earlier batch of the source
    that was held, or had quarantined rows, and whose quarantined rows share a key with this
    batch. Nothing is merged: the link tells stewards and the feedback history what answered what.
    """
    keys = [k for k in dataset.natural_key if k in source.header_for_field]
    if not keys:
        return None
    match = sql.SQL(" and ").join(sql.SQL("btrim(e.{c}) = btrim(n.{c})").format(c=sql.Identifier(k)) for k in keys)
    row = conn.execute(sql.SQL("""
        select l.load_id from ops.loads l
        where l.source_id = %(source_id)s and l.load_id <> %(load_id)s
          and l.status in ('held', 'validated', 'published')
          and l.received_at <= (select received_at from ops.loads where load_id = %(load_id)s)
          and exists (select 1 from quarantine.rows q join {table} e on e._load_id = q.load_id and e._row_no = q.row_no
                      join {table} n on n._load_id = %(load_id)s and {match}
                      where q.load_id = l.load_id)
        order by l.received_at desc limit 1""").format(table=sql.Identifier("raw", dataset.dataset), match=match),
        {"source_id": source.id, "load_id": load_id}).fetchone()
    if row is None:
        return None
    conn.execute("update ops.loads set resubmission_of = %s where load_id = %s", (row[0], load_id))
    log.info("%s: %s corrects the earlier batch %s", source.id, load_id, row[0])
    return row[0]


def validate_load(conn: psycopg.Connection, registry: Registry, load_id: str, *,
                  run_gx: bool = True) -> ValidationResult:
    """Validate a ``received`` batch once; a batch already validated, held or published is left as it is.

    The set-based statement writes the quarantine (every failing row, every broken rule);
    Great Expectations then validates the same batch with the dataset's suite from
    ``expectations/`` and its per-expectation counts are stored in ``ops.validation_results``
    (``run_gx=False`` skips it, for callers that only need the verdicts).
    """
    started = time.perf_counter()
    with conn.transaction():
        load = get_load(conn, load_id, for_update=True)
        if load is None:
            raise KeyError(f"no load {load_id!r} in the ledger")
        source = registry.source(load.source_id)
        if load.status != "received":
            return ValidationResult(load_id, load.status, load.rows_received or 0, load.rows_accepted or 0,
                                    load.rows_quarantined or 0, source.tolerance)
        dataset = registry.dataset_of(source)
        serial_epoch = _serial_epoch(conn, source, load_id)
        if serial_epoch is not None:  # staging reads the batch's date serials as validation does
            conn.execute("update ops.loads set serial_epoch = %s where load_id = %s", (serial_epoch, load_id))
        params = batch_params(load_id, source, serial_epoch)
        conn.execute(build_quarantine_sql(dataset, source), params)
        quarantined = conn.execute("select count(*) from quarantine.rows where load_id = %s", (load_id,)).fetchone()[0]
        received = load.rows_received or 0
        rate = quarantined / received if received else 0.0
        status = "held" if rate > source.tolerance else "validated"
        error = None
        if status == "held":
            error = (f"{source.id}: {load.reference}: {quarantined} of {received} rows ({rate:.1%}) broke rules, "
                     f"over the tolerance of {source.tolerance:.0%}; the batch is held and nothing is published")
            log.warning("%s", error)
        link_resubmission(conn, dataset, source, load_id)
        normalised = normalisation_counts(conn, dataset, source, params)
        if run_gx:
            from huiju.quality.gx import run_suite

            # Inside the transaction: if GX fails, the batch stays ``received`` and the task's retry redoes both.
            run_suite(conn, registry, source, load_id, params)
        from huiju.quality.gx import suite_name

        # The run row is GX's when it ran; without GX it still records the normalisations.
        conn.execute(
            "insert into ops.validation_runs (load_id, suite, success, normalised) values (%s, %s, %s, %s)"
            " on conflict (load_id) do update set normalised = excluded.normalised",
            (load_id, suite_name(dataset.dataset), quarantined == 0, Jsonb(normalised)))
        set_status(conn, load_id, status, rows_accepted=received - quarantined, rows_quarantined=quarantined,
                   validated_at=_now(conn), validate_seconds=time.perf_counter() - started, error=error)
        if status == "held":
            from huiju.notices import queue_held_notice

            # Queued with the verdict: the department and stewards hear about every held batch, once.
            queue_held_notice(conn, registry, load_id)
    log.info("%s: %s validated: %d received, %d quarantined → %s", source.id, load_id, received, quarantined, status)
    return ValidationResult(load_id, status, received, received - quarantined, quarantined, source.tolerance)


def publish_load(conn: psycopg.Connection, load_id: str) -> bool:
    """Publish a validated batch (its good rows become visible to dbt); True if it changed."""
    with conn.transaction():
        load = get_load(conn, load_id, for_update=True)
        if load is None or load.status != "validated":
            return False
        set_status(conn, load_id, "published", published_at=_now(conn))
    return True


def _now(conn: psycopg.Connection) -> object:
    return conn.execute("select now()").fetchone()[0]
