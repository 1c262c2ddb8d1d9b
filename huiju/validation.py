"""Validation of a landed batch: every row checked against its dataset's rules, in the warehouse.

Each field's rules (required, enumeration, number, date, unified social credit code, ID
number) and natural-key duplicates within the batch are compiled into one set-based SQL
statement per batch: a million rows validate in seconds, and every failing row is written to
``quarantine.rows`` with *all* the rules it broke, the department's own row number and column
header, the value (masked where the field is sensitive) and a reason in Chinese a clerk can
act on. The check-digit functions (``ops.uscc_problem``, ``ops.id_number_problem``) are
tested against python-stdnum.

A batch whose failure rate is within the source's tolerance becomes ``validated`` (its good
rows go on); above it, ``held``: nothing of it is published.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from huiju.ledger import get_load, set_status
from huiju.registry import Dataset, DatasetField, Registry, Source

log = logging.getLogger(__name__)

# What each rule's problem codes mean, for the department. "{h}" is the department's column header.
REASONS: dict[str, dict[str, str]] = {
    "required": {"required": "「{h}」为必填项，不能为空"},
    "enum": {"enum": "「{h}」的值不在规定范围内，应为：{allowed}"},
    "number": {"number": "「{h}」不是有效数字"},
    "date": {"date": "「{h}」不是有效日期（应为如2026-03-05的日期）"},
    "uscc": {
        "length": "「{h}」应为18位统一社会信用代码",
        "charset": "「{h}」含有统一社会信用代码不允许的字符（不使用I、O、Z、S、V）",
        "authority": "「{h}」第1位登记管理部门代码错误",
        "category": "「{h}」第2位机构类别代码错误",
        "region": "「{h}」第3至8位应为行政区划代码（数字）",
        "org_code": "「{h}」第9至17位组织机构代码的校验码错误",
        "check": "「{h}」第18位校验码错误，请核对代码是否抄错",
    },
    "id_number": {
        "numeric": "「{h}」被表格软件存成了数字，后几位已丢失；请把该列设为文本格式后重新填写",
        "format": "「{h}」应为18位公民身份号码（或15位旧号码）",
        "region": "「{h}」前两位不是有效的省级行政区划代码",
        "birth_date": "「{h}」中的出生日期无效",
        "check": "「{h}」最后一位校验码错误，请核对号码是否抄错",
    },
    "duplicate": {"duplicate": "「{h}」与本批次第{first}行重复"},
}

_PROBLEM_FUNCTIONS = {"uscc": "ops.uscc_problem", "id_number": "ops.id_number_problem",
                      "number": "ops.number_problem", "date": "ops.date_problem"}


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
class _Check:
    field: DatasetField
    header: str
    rule: str
    problem_sql: sql.Composable  # evaluates to a problem code, or NULL when the value is fine
    reason_sql: sql.Composable  # the Chinese reason, given that problem code


def _reason_case(rule: str, header: str, **extra: str) -> sql.Composable:
    cases = [sql.SQL("when {code} then {text}").format(code=sql.Literal(code),
                                                       text=sql.Literal(text.format(h=header, **extra)))
             for code, text in REASONS[rule].items() if "{first}" not in text]
    return sql.SQL("case problem {cases} else {fallback} end").format(
        cases=sql.SQL(" ").join(cases), fallback=sql.Literal(f"「{header}」不符合规则（{rule}）"))


def _checks(dataset: Dataset, source: Source) -> list[_Check]:
    checks: list[_Check] = []
    headers = source.header_for_field
    for f in dataset.fields:
        if f.name not in headers:
            continue  # not delivered by this source: nothing to check (a missing required column fails landing)
        header = headers[f.name]
        column = sql.Identifier(f.name)
        present = sql.SQL("nullif(btrim({c}), '') is not null").format(c=column)
        if f.required:
            checks.append(_Check(f, header, "required",
                                 sql.SQL("case when not ({p}) then 'required' end").format(p=present),
                                 _reason_case("required", header)))
        if f.enum:
            checks.append(_Check(f, header, "enum",
                                 sql.SQL("case when {p} and btrim({c}) <> all({allowed}) then 'enum' end").format(
                                     p=present, c=column, allowed=sql.Literal(list(f.enum))),
                                 _reason_case("enum", header, allowed="、".join(f.enum))))
        kinds = ([f.type] if f.type in _PROBLEM_FUNCTIONS else []) + list(f.rules)
        for rule in kinds:
            checks.append(_Check(f, header, rule,
                                 sql.SQL("{fn}({c})").format(fn=sql.SQL(_PROBLEM_FUNCTIONS[rule]), c=column),
                                 _reason_case(rule, header)))
    return checks


def _masked_value(f: DatasetField) -> sql.Composable:
    column = sql.Identifier(f.name)
    if f.sensitive:
        # Region and last four kept, the rest hidden: matches huiju.masking.mask_id_number.
        return sql.SQL("case when length(btrim({c})) > 8 then left(btrim({c}), 6) ||"
                       " repeat('*', length(btrim({c})) - 10) || right(btrim({c}), 4)"
                       " else repeat('*', length(coalesce({c}, ''))) end").format(c=column)
    return sql.SQL("left({c}, 200)").format(c=column)


def build_quarantine_sql(dataset: Dataset, source: Source) -> sql.Composable:
    """The statement that writes every failing row of one batch (``%(load_id)s``) to quarantine."""
    checks = _checks(dataset, source)
    key_fields = [f for f in dataset.natural_key if f in source.header_for_field]
    problem_columns = [sql.SQL("{p} as {a}").format(p=c.problem_sql, a=sql.Identifier(f"p{i}"))
                       for i, c in enumerate(checks)]
    value_columns = [sql.SQL("{v} as {a}").format(v=_masked_value(c.field), a=sql.Identifier(f"v{i}"))
                     for i, c in enumerate(checks)]
    dup_problem = sql.SQL("null::text")
    dup_header = ""
    if key_fields:
        dup_header = source.header_for_field[key_fields[0]]
        partition = sql.SQL(", ").join(sql.Identifier(k) for k in key_fields)
        dup_problem = sql.SQL(
            "case when {all_present} and row_number() over (partition by {key} order by _row_no) > 1"
            " then 'duplicate' end").format(
            all_present=sql.SQL(" and ").join(
                sql.SQL("nullif(btrim({c}), '') is not null").format(c=sql.Identifier(k)) for k in key_fields),
            key=partition)
        value_columns.append(sql.SQL("(min(_row_no) over (partition by {key}))::text as vdup").format(key=partition))
    else:
        value_columns.append(sql.SQL("null::text as vdup"))
    unpivot_rows = [
        sql.SQL("({i}, {field}, {header}, {rule}, p{i}, v{i}, {reason})").format(
            i=sql.Literal(i), field=sql.Literal(c.field.name), header=sql.Literal(c.header),
            rule=sql.Literal(c.rule), reason=sql.SQL("(select {r} from (select p{i} as problem) x)").format(
                r=c.reason_sql, i=sql.SQL(str(i))))
        for i, c in enumerate(checks)
    ]
    dup_reason = sql.SQL("replace({t}, '{{first}}', vdup)").format(
        t=sql.Literal(REASONS["duplicate"]["duplicate"].format(h=dup_header, first="{first}")))
    unpivot_rows.append(sql.SQL("({i}, {field}, {header}, 'duplicate', pdup, vdup, {reason})").format(
        i=sql.Literal(len(checks)), field=sql.Literal(key_fields[0] if key_fields else None),
        header=sql.Literal(dup_header), reason=dup_reason))
    any_problem = sql.SQL(" or ").join(
        [sql.SQL("p{i} is not null").format(i=sql.SQL(str(i))) for i in range(len(checks))]
        + [sql.SQL("pdup is not null")])
    return sql.SQL("""
with checked as (
    select _load_id, _row_no, {problems}, {dup} as pdup, {values}
    from {table} where _load_id = %(load_id)s
),
failing as (
    select * from checked where {any_problem}
),
violations as (
    select f._load_id, f._row_no, u.ord, u.field, u.header, u.rule, u.problem, u.value, u.reason
    from failing f
    cross join lateral (values {unpivot}) as u(ord, field, header, rule, problem, value, reason)
    where u.problem is not null
)
insert into quarantine.rows (load_id, row_no, dataset, violations, reasons)
select _load_id, _row_no, {dataset},
       jsonb_agg(jsonb_build_object('field', field, 'header', header, 'rule', rule, 'problem', problem,
                                    'value', value, 'reason', reason) order by ord),
       string_agg(reason, '；' order by ord)
from violations
group by _load_id, _row_no
on conflict (load_id, row_no) do nothing
""").format(
        problems=sql.SQL(", ").join(problem_columns) if problem_columns else sql.SQL("null::text as p_none"),
        dup=dup_problem,
        values=sql.SQL(", ").join(value_columns),
        table=sql.Identifier("raw", dataset.dataset),
        any_problem=any_problem,
        unpivot=sql.SQL(", ").join(unpivot_rows),
        dataset=sql.Literal(dataset.dataset),
    )


def validate_load(conn: psycopg.Connection, registry: Registry, load_id: str) -> ValidationResult:
    """Validate a ``received`` batch once; a batch already validated, held or published is left as it is."""
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
        conn.execute(build_quarantine_sql(dataset, source), {"load_id": load_id})
        quarantined = conn.execute("select count(*) from quarantine.rows where load_id = %s", (load_id,)).fetchone()[0]
        received = load.rows_received or 0
        rate = quarantined / received if received else 0.0
        status = "held" if rate > source.tolerance else "validated"
        error = None
        if status == "held":
            error = (f"{source.id}: {load.reference}: {quarantined} of {received} rows ({rate:.1%}) broke rules, "
                     f"over the tolerance of {source.tolerance:.0%}; the batch is held and nothing is published")
            log.warning("%s", error)
        set_status(conn, load_id, status, rows_accepted=received - quarantined, rows_quarantined=quarantined,
                   validated_at=_now(conn), validate_seconds=time.perf_counter() - started, error=error)
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
