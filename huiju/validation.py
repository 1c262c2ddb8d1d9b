"""Validation of a landed batch: every row checked against its dataset's rules, in the warehouse.

The rules, compiled to SQL (:mod:`huiju.checks`), run as one set-based statement per batch:
every failing row is written to ``quarantine.rows`` with *all* the rules it broke, the
department's own row number and column header, the value (masked where it identifies a
citizen) and a reason in Chinese a clerk can act on. Great Expectations then runs the same
SQL over the same batch as the reviewed suite ``expectations/<dataset>.<dataset>.critical.json``
and records per-expectation counts (:mod:`huiju.quality.gx`).

A batch whose failure rate is within the source's tolerance becomes ``validated`` (its good
rows go on); above it, ``held``: nothing of it is published. A batch that passed but whose size
or pass rate is far off its source's history is flagged to the stewards, or held when the source
says so (:mod:`huiju.monitoring.anomalies`).

Records a person types into the departments' portal (人工录入) meet the same SQL before anything
is stored (:func:`check_records`), so the form and batch validation give the same reasons."""

from __future__ import annotations

import logging
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import psycopg
from huiju_connectors.files import workbook_epoch
from psycopg import sql
from psycopg.types.json import Jsonb

from huiju.archive import archived_path
from huiju.checks import batch_params, batch_query, build_quarantine_sql, violations_query
from huiju.landing.raw import ensure_raw_table
from huiju.ledger import get_load, set_status
from huiju.monitoring.anomalies import check_load, queue_anomaly_notice
from huiju.notices import queue_held_notice
from huiju.quality.gx import run_suite, suite_name
from huiju.registry import Dataset, Registry, Source
from huiju.rules import FIELD_RULES

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


def _serial_epoch(conn: psycopg.Connection, source: Source, load_id: str) -> date | None:
    """The workbook's epoch for an Excel source (serials are read with it); None for text formats."""
    if source.format != "xlsx":
        return None
    row = conn.execute("select archive_path from ops.loads where load_id = %s", (load_id,)).fetchone()
    if not row or not row[0]:
        return None
    try:
        return workbook_epoch(archived_path(row[0]))
    # Not a zip workbook after all (or records typed into the portal, archived as JSON): no serials to read.
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


@dataclass(frozen=True)
class Violation:
    """One rule a typed-in record breaks: the field, the department's header, the rule and the reason in Chinese."""

    field: str
    header: str
    rule: str
    reason: str


def check_records(conn: psycopg.Connection, dataset: Dataset, source: Source,
                  records: Sequence[Mapping[str, str | None]]) -> list[list[Violation]]:
    """The rules' verdict on records a person is typing (keys: dataset field names), before anything is stored.

    The records go through :func:`huiju.checks.violations_query` as a batch of their own — the
    same SQL, the same Chinese reasons and the same order as batch validation, natural-key
    duplicates among them (``与本批次第N行重复``: N counts the records from 1) and against what
    other sources published included. Fields the source does not map are ignored. Returns one
    list per record, empty when the record passes. Nothing is written (but the dataset's empty
    raw table, when no batch created it yet: the check against published keys reads it; it
    commits, so call this outside a transaction).
    """
    ensure_raw_table(conn, dataset)
    fields = [name for name in dataset.field_names if name in source.header_for_field]
    columns = sql.SQL(", ").join(sql.SQL("r.{f}").format(f=sql.Identifier(f)) for f in fields)
    types = sql.SQL(", ").join(sql.SQL("{f} text").format(f=sql.Identifier(f)) for f in fields)
    batch = sql.SQL("select ''::text as _load_id, r._row_no, {columns}, {source}::text as _source_id,"
                    " null::date as _serial_epoch from jsonb_to_recordset(%(records)s) as r(_row_no integer, {types})"
                    ).format(columns=columns, source=sql.Literal(source.id), types=types)
    rows = [{"_row_no": number, **{f: record.get(f) for f in fields}} for number, record in enumerate(records, 1)]
    found: list[list[Violation]] = [[] for _ in records]
    query = sql.SQL("select v._row_no, v.violations from ({v}) as v(_load_id, _row_no, dataset, violations, reasons)"
                    ).format(v=violations_query(dataset, source, batch))
    for row_no, violations in conn.execute(query, {"records": Jsonb(rows)}).fetchall():
        found[row_no - 1] = [Violation(v["field"], v["header"], v["rule"], v["reason"]) for v in violations]
    return found


def link_resubmission(conn: psycopg.Connection, dataset: Dataset, source: Source, load_id: str) -> str | None:
    """Link a batch to the earlier batch of the same source it corrects, if any; return that batch's id.

    A correction is recognised by its natural keys: the latest earlier batch of the source
    that was held, or had quarantined rows, and whose quarantined rows share a key with this
    batch. Nothing is merged: the link tells stewards and the feedback history what answered what.
    """
    keys = [k for k in dataset.natural_key if k in source.header_for_field]
    if not keys:
        return None
    # One batch at a time, latest first, each a set intersection of keys: the earlier batch's quarantined rows
    # (its rows through raw's BRIN index, joined to its quarantine by row number: one pass, hashed) and this
    # batch's. Written as a single join, the planner nests raw look-ups inside a loop over rows it cannot count.
    keys_of = sql.SQL(", ").join(sql.SQL("btrim(r.{c})").format(c=sql.Identifier(k)) for k in keys)
    shared = sql.SQL(
        "select exists (select {keys} from {table} r join quarantine.rows q on q.row_no = r._row_no"
        " where r._load_id = %(earlier)s and q.load_id = %(earlier)s"
        " intersect select {keys} from {table} r where r._load_id = %(load_id)s)").format(
        keys=keys_of, table=sql.Identifier("raw", dataset.dataset))
    earlier = conn.execute("""
        select l.load_id from ops.loads l
        where l.source_id = %(source_id)s and l.load_id <> %(load_id)s
          and l.status in ('held', 'validated', 'published')
          and l.received_at <= (select received_at from ops.loads where load_id = %(load_id)s)
          and exists (select 1 from quarantine.rows q where q.load_id = l.load_id)
        order by l.received_at desc""", {"source_id": source.id, "load_id": load_id}).fetchall()
    row = next((candidate for candidate in earlier
                if conn.execute(shared, {"earlier": candidate[0], "load_id": load_id}).fetchone()[0]), None)
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
        # 预测预警: a batch that passed is compared with the source's history before anything publishes it.
        anomaly = check_load(conn, source, load, received, quarantined) if status == "validated" else None
        if anomaly is not None and anomaly.hold:
            status, error = "held", f"{source.id}: {load.reference}: {anomaly.summary()}; held for a steward"
        link_resubmission(conn, dataset, source, load_id)
        normalised = normalisation_counts(conn, dataset, source, params)
        if run_gx:
            # Inside the transaction: if GX fails, the batch stays ``received`` and the task's retry redoes both.
            run_suite(conn, registry, source, load_id, params)
        # The run row is GX's when it ran; without GX it still records the normalisations.
        conn.execute(
            "insert into ops.validation_runs (load_id, suite, success, normalised) values (%s, %s, %s, %s)"
            " on conflict (load_id) do update set normalised = excluded.normalised",
            (load_id, suite_name(dataset.dataset), quarantined == 0, Jsonb(normalised)))
        set_status(conn, load_id, status, rows_accepted=received - quarantined, rows_quarantined=quarantined,
                   validated_at=_now(conn), validate_seconds=time.perf_counter() - started, error=error)
        if anomaly is not None and anomaly.findings:
            queue_anomaly_notice(conn, registry, anomaly)
        elif status == "held":
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
