"""Landing: a department's batch copied as received into ``raw.<dataset>``, with its ledger row.

Exactly once by design:

- the load id is deterministic (source + sha256 of the content), so a retry finds its own row;
- data, ledger row and any quarantined malformed rows commit in one transaction, under an
  advisory lock on the load id: a load killed at any instant leaves nothing or everything;
- content already landed for the source is recorded as a repeat and not landed again.

The bulk path is a single ``COPY`` straight from the file into the raw table; the raw
table's ``_load_id``, ``_row_no`` and ``_source_ref`` columns default to transaction-local
settings, so no row passes through Python. Files that need per-row attention (unmapped extra
columns, ragged rows, spreadsheets) go through the streaming path, still one ``COPY``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from operator import itemgetter
from pathlib import Path

import psycopg
from huiju_connectors.files import (
    CsvLayout,
    FileFormatError,
    detect_encoding,
    digest_file,
    iter_csv_records,
    normalise_header,
    open_csv_data,
    read_csv_layout,
    read_json,
    read_xlsx,
    read_xml,
)
from psycopg import sql

from huiju.archive import archive_bytes, archive_file
from huiju.ledger import get_load, make_load_id, record_repeat, save_cursor
from huiju.masking import mask_text
from huiju.registry import Dataset, Registry, Source
from huiju.rules import RULES

log = logging.getLogger(__name__)

# Rows are numbered by a per-transaction temporary sequence, named by OID in a setting (see _Batch).
_ROW_NO_DEFAULT = "nextval(current_setting('huiju.row_seq')::oid::regclass)"
#: The rule a record breaks when it cannot become a row as sent (quarantined at landing).
COLUMNS_RULE = RULES["columns"]
_PG_ENCODING = {"utf-8-sig": "UTF8", "utf-8": "UTF8", "gb18030": "GB18030"}


class LandingError(Exception):
    """A batch cannot be landed; the message names the source, the file and what to fix."""


@dataclass(frozen=True)
class LandResult:
    """What happened to one delivered batch."""

    source_id: str
    reference: str
    load_id: str
    outcome: str  # landed | repeat | already_landed | held | failed
    rows_received: int = 0
    rows_rejected: int = 0  # malformed rows quarantined at landing (ragged CSV records)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


_RAW_READY: set[tuple[str, str, tuple[str, ...]]] = set()


def ensure_raw_table(conn: psycopg.Connection, dataset: Dataset) -> None:
    """Create ``raw.<dataset>`` (or add newly declared fields) — all fields are text, as received."""
    key = (conn.info.dsn, dataset.dataset, dataset.field_names)
    if key in _RAW_READY:
        return
    table = sql.Identifier("raw", dataset.dataset)
    # DDL only for what is missing, found in the catalog (which takes no lock on the table): even
    # `add column if not exists` takes an exclusive lock, which queues behind any open reader of
    # the table and blocks every reader after it — with sources landing and validating side by
    # side, a no-op ALTER could stall them all behind a transaction left open by a validator.
    present = {row[0] for row in conn.execute(
        "select column_name from information_schema.columns where table_schema = 'raw' and table_name = %s",
        (dataset.dataset,))}
    if not present:
        conn.execute(sql.SQL(
            "create table if not exists {table} ("
            " _load_id text not null default current_setting('huiju.load_id'),"
            f" _row_no integer not null default {_ROW_NO_DEFAULT},"
            " _source_ref text not null default current_setting('huiju.source_ref'),"
            " _loaded_at timestamptz not null default now(),"
            " _extra jsonb)"
        ).format(table=table))
    for name in dataset.field_names:
        if name not in present:
            conn.execute(sql.SQL("alter table {table} add column if not exists {column} text").format(
                table=table, column=sql.Identifier(name)))
    else:
        default = conn.execute(
            "select pg_get_expr(d.adbin, d.adrelid) from pg_attrdef d join pg_attribute a"
            " on a.attrelid = d.adrelid and a.attnum = d.adnum"
            " where d.adrelid = %s::regclass and a.attname = '_row_no'",
            (f"raw.{dataset.dataset}",)).fetchone()
        if default and "::oid" not in default[0]:  # a table made before row numbers took the sequence's OID
            conn.execute(sql.SQL("alter table {table} alter column _row_no set default " + _ROW_NO_DEFAULT).format(
                table=table))
    index = f"{dataset.dataset}_load_id"
    if not conn.execute("select 1 from pg_indexes where schemaname = 'raw' and indexname = %s", (index,)).fetchone():
        conn.execute(sql.SQL("create index if not exists {index} on {table} (_load_id)").format(
            index=sql.Identifier(index), table=table))
    conn.commit()
    _RAW_READY.add(key)


@dataclass(frozen=True)
class ColumnMap:
    """How a file's columns map onto the dataset's fields."""

    fields_by_index: dict[int, str]  # file column index → dataset field
    extras: dict[int, str]  # unmapped file columns, kept in _extra under their header
    width: int

    @property
    def is_exact(self) -> bool:
        """Every column maps to a field in order: the file can be copied without touching rows."""
        return not self.extras and len(self.fields_by_index) == self.width


def map_columns(source: Source, dataset: Dataset, header: list[str], reference: str) -> tuple[ColumnMap, list[str]]:
    """Match the file's header against the source's configured column headers.

    Headers are compared after NFKC normalisation without spaces, so ``罚款金额(万元)`` and
    ``罚款金额（万元）`` are the same column. Raises :class:`LandingError` when a required
    field's column is missing; returns warnings for optional columns that are missing.
    """
    wanted = {normalise_header(h): f for h, f in source.columns.items()}
    fields_by_index: dict[int, str] = {}
    extras: dict[int, str] = {}
    seen: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = normalise_header(cell)
        field_name = wanted.get(key)
        if field_name is None:
            if key:
                extras[index] = str(cell).strip()
            elif index < len(header) - 1 or key:
                extras[index] = f"第{index + 1}列"
            continue
        if field_name in seen:
            raise LandingError(f"{source.id}: {reference}: column {cell!r} appears twice in the header "
                               f"(columns {seen[field_name] + 1} and {index + 1})")
        seen[field_name] = index
        fields_by_index[index] = field_name
    # A trailing empty header cell (a trailing delimiter) is not a column anyone filled in.
    width = len(header)
    if header and not normalise_header(header[-1]) and (width - 1) not in extras:
        width -= 1
    missing = [f for f in dataset.fields if f.name not in seen and f.name in source.columns.values()]
    required_missing = [f for f in missing if f.required]
    if required_missing:
        names = "、".join(f"{source.header_for_field[f.name]}（{f.label}）" for f in required_missing)
        raise LandingError(f"{source.id}: {reference}: required column(s) missing from the header: {names}; "
                           f"the header found was: {', '.join(str(h) for h in header)}")
    warnings = [f"column {source.header_for_field[f.name]!r} ({f.label}) is missing; the field stays empty"
                for f in missing]
    if extras:
        warnings.append("columns not in the configuration were kept in _extra: " + ", ".join(extras.values()))
    return ColumnMap(fields_by_index, extras, width), warnings


class _Batch:
    """The per-transaction settings the raw table's defaults read."""

    def __init__(self, conn: psycopg.Connection, load_id: str, reference: str, first_row: int):
        conn.execute("create temp sequence if not exists huiju_row_seq")
        # The sequence is named by its OID: resolving a name for every row costs ~15% of a COPY.
        conn.execute(
            "select set_config('huiju.load_id', %s, true), set_config('huiju.source_ref', %s, true),"
            " set_config('huiju.row_seq', 'pg_temp.huiju_row_seq'::regclass::oid::text, true),"
            " setval('pg_temp.huiju_row_seq', %s, false)",
            (load_id, reference, first_row),
        )


def _copy_exact_csv(conn: psycopg.Connection, dataset: Dataset, path: Path, layout: CsvLayout,
                    columns: ColumnMap, delimiter: str) -> int:
    target = sql.SQL("copy {table} ({columns}) from stdin with (format csv, delimiter {delimiter}, encoding {enc})")
    statement = target.format(
        table=sql.Identifier("raw", dataset.dataset),
        columns=sql.SQL(", ").join(sql.Identifier(columns.fields_by_index[i]) for i in range(columns.width)),
        delimiter=sql.Literal(delimiter),
        enc=sql.Literal(_PG_ENCODING[layout.encoding]),
    )
    with conn.cursor() as cur:
        with cur.copy(statement) as copy, open_csv_data(path, layout) as data:
            while chunk := data.read(1 << 20):
                copy.write(chunk)
        return cur.rowcount


def _copy_rows(conn: psycopg.Connection, dataset: Dataset, columns: ColumnMap,
               records: Iterable[tuple[int, list[str | None]]], reference: str, source_id: str,
               load_id: str, *, screen_text: list[str] | None = None) -> tuple[int, list[tuple[int, str, str]]]:
    """Stream records into raw; return (rows landed, malformed rows as (row_no, reason, masked text)).

    ``screen_text``: the file's header, when its records come from a format that can carry text
    UTF-8 cannot encode (JSON's ``"\\ud800"``); a record holding some is malformed (the reason
    names its columns by that header) instead of failing the COPY.
    """
    mapped = sorted(columns.fields_by_index.items())
    indexes = [i for i, _ in mapped]
    names = [sql.Identifier(f) for _, f in mapped]
    extras = sorted(columns.extras.items())
    statement = sql.SQL("copy {table} (_row_no, _extra, {columns}) from stdin").format(
        table=sql.Identifier("raw", dataset.dataset), columns=sql.SQL(", ").join(names))
    malformed: list[tuple[int, str, str]] = []
    landed = 0
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row_no, cells in records:
            if len(cells) != columns.width and not (len(cells) > columns.width and not any(cells[columns.width:])):
                if not any(cells):
                    continue  # an empty line is not a record anyone sent
                reason = COLUMNS_RULE.reason("count", cells=len(cells), width=columns.width)
                malformed.append((row_no, reason, mask_text(",".join(c or "" for c in cells))[:500]))
                continue
            if screen_text is not None and not _encodable("".join(filter(None, cells))):
                malformed.append((row_no, *_unstorable(dict(zip(screen_text, cells, strict=False)))))
                continue
            extra = {h: cells[i] for i, h in extras if i < len(cells) and cells[i] not in (None, "")}
            copy.write_row([row_no, json.dumps(extra, ensure_ascii=False) if extra else None,
                            *(cells[i] or None if i < len(cells) else None for i in indexes)])
            landed += 1
    if malformed:
        log.warning("%s: %s: %d malformed rows quarantined at landing (first: row %d)", source_id, reference,
                    len(malformed), malformed[0][0])
    return landed, malformed


def _quarantine_malformed(conn: psycopg.Connection, load_id: str, dataset: str,
                          malformed: list[tuple[int, str, str]]) -> None:
    with conn.cursor() as cur, cur.copy(
        "copy quarantine.rows (load_id, row_no, dataset, violations, reasons) from stdin"
    ) as copy:
        for row_no, reason, text in malformed:
            violation = {"field": None, "header": None, "rule": "columns", "value": text, "reason": reason}
            copy.write_row([load_id, row_no, dataset, json.dumps([violation], ensure_ascii=False), reason])


def _records_of(source: Source, path: Path,
                reference: str) -> tuple[list[str], Iterator[tuple[int, list]], CsvLayout | None]:
    if source.format == "xlsx":
        sheet = read_xlsx(path, header_row=source.header_row, sheet=source.sheet)
        return sheet.header, sheet.rows, None
    if source.format == "json":
        records = read_json(path, records_key=source.records_key)
        return records.header, records.rows, None
    if source.format == "xml":
        assert source.record_element is not None  # the registry requires it for xml
        records = read_xml(path, record_element=source.record_element)
        return records.header, records.rows, None
    encoding = detect_encoding(path, source.encoding)
    layout = read_csv_layout(path, encoding=encoding, header_row=source.header_row, delimiter=source.delimiter)
    return layout.header, iter_csv_records(path, layout, source.delimiter), layout


def land_file(conn: psycopg.Connection, registry: Registry, source: Source, path: Path, *,
              reference: str | None = None, data_date: date | None = None) -> LandResult:
    """Land one delivered file of ``source`` exactly once (see the module docstring).

    ``reference`` is the name the department gave the file (default: its file name).
    A file that cannot be read is recorded in the ledger as ``failed`` with the reason and
    returned with ``outcome="failed"``; nothing of it reaches ``raw``.
    """
    reference = reference or path.name
    dataset = registry.dataset_of(source)
    ensure_raw_table(conn, dataset)
    started = time.perf_counter()
    digest = digest_file(path)
    load_id = make_load_id(source.id, digest.sha256)
    archive_rel = archive_file(path, digest.sha256)
    try:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (load_id,))
            existing = get_load(conn, load_id)
            if existing is not None and existing.status != "failed":
                if existing.reference == reference:
                    return LandResult(source.id, reference, load_id, "already_landed", existing.rows_received or 0)
                record_repeat(conn, source.id, reference, digest.sha256, load_id)
                log.info("%s: %s repeats %s (already landed as %s)", source.id, reference, existing.reference, load_id)
                return LandResult(source.id, reference, load_id, "repeat")
            header, records, layout = _records_of(source, path, reference)
            columns, warnings = map_columns(source, dataset, header, reference)
            conn.execute(
                "insert into ops.loads (load_id, source_id, department, dataset, channel, reference, sha256, bytes,"
                " archive_path, status, warnings, data_date)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'received', %s, %s)"
                " on conflict (load_id) do update set status = 'received', error = null,"
            " reference = excluded.reference,"
                " warnings = excluded.warnings, data_date = excluded.data_date, received_at = now()",
                (load_id, source.id, source.department, dataset.dataset, source.channel, reference, digest.sha256,
                 digest.bytes, archive_rel, json.dumps(warnings, ensure_ascii=False), data_date),
            )
            malformed: list[tuple[int, str, str]] = []
            if layout is not None and columns.is_exact:
                _Batch(conn, load_id, reference, layout.first_data_row)
                try:
                    with conn.transaction():
                        landed = _copy_exact_csv(conn, dataset, path, layout, columns, source.delimiter)
                except (psycopg.errors.BadCopyFileFormat, psycopg.errors.InvalidTextRepresentation,
                        psycopg.errors.CharacterNotInRepertoire, psycopg.errors.UntranslatableCharacter) as exc:
                    # Malformed records: take the row-by-row path, which quarantines them individually.
                    log.info("%s: %s: fast COPY refused (%s); landing row by row", source.id, reference,
                             str(exc).splitlines()[0])
                    header, records, layout = _records_of(source, path, reference)
                    landed, malformed = _copy_rows(conn, dataset, columns, records, reference, source.id, load_id)
            else:
                _Batch(conn, load_id, reference, 1)
                landed, malformed = _copy_rows(conn, dataset, columns, records, reference, source.id, load_id,
                                               screen_text=header if source.format == "json" else None)
            if malformed:
                _quarantine_malformed(conn, load_id, dataset.dataset, malformed)
            received = landed + len(malformed)
            conn.execute(
                "update ops.loads set rows_received = %s, landed_at = now(), land_seconds = %s where load_id = %s",
                (received, time.perf_counter() - started, load_id),
            )
    except (LandingError, FileFormatError, UnicodeDecodeError) as exc:
        message = str(exc) if isinstance(exc, LandingError) else f"{source.id}: {reference}: {exc}"
        _record_failure(conn, source, dataset, reference, digest.sha256, digest.bytes, archive_rel, load_id,
                        message, data_date)
        log.error("%s", message)
        return LandResult(source.id, reference, load_id, "failed", error=message)
    log.info("%s: landed %s as %s: %d rows (%d malformed)", source.id, reference, load_id, received, len(malformed))
    return LandResult(source.id, reference, load_id, "landed", received, len(malformed), warnings=warnings)


def _record_failure(conn: psycopg.Connection, source: Source, dataset: Dataset, reference: str, sha256: str,
                    size: int, archive_rel: str | None, load_id: str, message: str, data_date: date | None) -> None:
    with conn.transaction():
        conn.execute(
            "insert into ops.loads (load_id, source_id, department, dataset, channel, reference, sha256, bytes,"
            " archive_path, status, error, data_date) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'failed', %s, %s)"
            " on conflict (load_id) do update set status = 'failed', error = excluded.error"
            " where ops.loads.status = 'failed'",
            (load_id, source.id, source.department, dataset.dataset, source.channel, reference, sha256, size,
             archive_rel, message, data_date),
        )


def record_failed(conn: psycopg.Connection, registry: Registry, source: Source, *, reference: str, content_id: str,
                  error: str, data_date: date | None = None, size: int = 0,
                  archive_path: str | None = None) -> LandResult:
    """Record a batch the platform refuses (unreadable, refused by content, refused by the department's server).

    It becomes a ``failed`` ledger row with ``error`` (naming the source, the batch and what to
    fix), its load id derived from ``content_id`` so a rerun meeting the same refusal updates the
    same row. Nothing of it reaches ``raw``.
    """
    load_id = make_load_id(source.id, content_id)
    _record_failure(conn, source, registry.dataset_of(source), reference, content_id, size, archive_path, load_id,
                    error, data_date)
    log.error("%s", error)
    return LandResult(source.id, reference, load_id, "failed", error=error)


def record_value_text(value: object) -> str | None:
    """A field of a record (JSON, SOAP, database row) as text, the way raw keeps everything."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return json.dumps(value, ensure_ascii=False, default=str)


def archive_payload(payload: bytes) -> tuple[str, str]:
    """Archive a payload as received (once); return its sha256 and archive path.

    Content already archived is not written again, so a channel may archive a page ahead of
    landing it (off the landing path) and :func:`land_records` then finds it in place.
    """
    sha = hashlib.sha256(payload).hexdigest()
    return sha, archive_bytes(payload, sha)


def land_records(conn: psycopg.Connection, registry: Registry, source: Source, *, reference: str, content_id: str,
                 records: Iterable[Mapping[str, object]], payload: bytes | None = None,
                 cursor: dict | None = None, data_date: date | None = None, first_row_no: int = 1,
                 warnings: Iterable[str] = (), quiet_extra: Collection[str] = (),
                 reject: Callable[[Mapping[str, object]], str | None] | None = None,
                 chunks: Iterable[bytes] | None = None) -> LandResult:
    """Land a batch of records (a REST/SOAP page, a database extract) exactly once, with its cursor.

    ``content_id`` identifies the batch deterministically (e.g. the sha256 of the page as
    received, or of the extract's watermark range): the load id derives from it, so a rerun
    after a crash finds the batch already landed. ``payload`` (the bytes as received) is
    archived for replay. Records stream into one ``COPY``: keys mapped in ``source.columns``
    go to their fields, any other key is kept in ``_extra``. The source's ``cursor`` is saved
    in the same transaction, also when the batch was already landed, so the position always
    moves with the data and never ahead of it.

    Rows are numbered from ``first_row_no`` (a page's records carry their position in the whole
    response, as the department would count them). ``warnings`` (e.g. schema drift noticed by
    the channel) are stored in the ledger row with the landing's own. Keys in ``quiet_extra``
    (a table's key or watermark column) go to ``_extra`` without a warning. ``reject(record)``
    returns a reason (in Chinese) for a record to quarantine instead of landing it (text in a
    wrongly declared encoding); such a record still counts as received. ``chunks``, instead of
    ``records``, is the batch already in COPY text form, columns ``_row_no, _extra`` and the
    mapped fields in ``source.columns`` order (a PostgreSQL source's own ``COPY … TO STDOUT``):
    it is written through untouched.
    """
    dataset = registry.dataset_of(source)
    ensure_raw_table(conn, dataset)
    started = time.perf_counter()
    load_id = make_load_id(source.id, content_id)
    sha256, archive_rel, size = content_id, None, 0
    if payload is not None:
        sha256, archive_rel = archive_payload(payload)
        size = len(payload)
    mapping = list(source.columns.items())
    names = [sql.Identifier(f) for _, f in mapping]
    statement = sql.SQL("copy {table} (_row_no, _extra, {columns}) from stdin").format(
        table=sql.Identifier("raw", dataset.dataset), columns=sql.SQL(", ").join(names))
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (load_id,))
        existing = get_load(conn, load_id)
        if existing is not None and existing.status != "failed":
            if cursor is not None:
                save_cursor(conn, source.id, cursor, load_id)
            return LandResult(source.id, reference, load_id, "already_landed", existing.rows_received or 0)
        conn.execute(
            "insert into ops.loads (load_id, source_id, department, dataset, channel, reference, sha256, bytes,"
            " archive_path, status, data_date) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'received', %s)"
            " on conflict (load_id) do update set status = 'received', error = null, received_at = now()",
            (load_id, source.id, source.department, dataset.dataset, source.channel, reference, sha256, size,
             archive_rel, data_date),
        )
        # Every row carries its _row_no, so only the load id and reference defaults are needed
        # (one statement instead of _Batch's row sequence: this runs once per page).
        conn.execute("select set_config('huiju.load_id', %s, true), set_config('huiju.source_ref', %s, true)",
                     (load_id, reference))
        landed = 0
        unknown: set[str] = set()
        known = set(source.columns)
        keys = [key for key, _ in mapping]
        rejected: list[tuple[int, str, str]] = []
        with conn.cursor() as cur, cur.copy(statement) as copy:
            for chunk in chunks or ():
                copy.write(chunk)
                landed += chunk.count(b"\n")  # COPY text escapes newlines in values: one per row
            for landed, record in enumerate(records, start=1):
                if reject is not None and (reason := reject(record)) is not None:
                    text = ",".join(record_value_text(v) or "" for v in record.values())
                    rejected.append((first_row_no + landed - 1, reason, mask_text(text)[:500]))
                    continue
                extra = {k: v for k, v in record.items() if k not in known}
                unknown.update(extra)
                copy.write_row([first_row_no + landed - 1,
                                json.dumps(extra, ensure_ascii=False, default=str) if extra else None,
                                *(v if type(v) is str else record_value_text(v)  # text is the common case
                                  for v in map(record.get, keys))])
        if rejected:
            _quarantine_malformed(conn, load_id, dataset.dataset, rejected)
        unknown.difference_update(quiet_extra)
        warnings = list(warnings)
        if unknown:
            warnings.append(f"fields not in the configuration were kept in _extra: {', '.join(sorted(unknown))}")
        conn.execute(
            "update ops.loads set rows_received = %s, landed_at = now(), land_seconds = %s, warnings = %s"
            " where load_id = %s",
            (landed, time.perf_counter() - started, json.dumps(warnings, ensure_ascii=False), load_id),
        )
        if cursor is not None:
            save_cursor(conn, source.id, cursor, load_id)
    log.info("%s: landed %s as %s: %d records", source.id, reference, load_id, landed)
    return LandResult(source.id, reference, load_id, "landed", landed, warnings=warnings)


@dataclass(frozen=True)
class RecordBatch:
    """One batch (a page) for :func:`land_record_batches`; the fields mean what ``land_records``' do.

    ``archived``: the payload's ``(sha256, archive reference)`` when the caller already archived
    it (:func:`archive_payload`, or a pack of pages with :func:`huiju.archive.archive_pack`), so it
    is not hashed or written again here.
    ``held``: a reason (for the department's steward) to record the batch in the ledger as
    ``held`` instead of landing it — e.g. its fields drifted from the configuration under the
    source's ``drift: hold`` policy. Nothing of a held batch reaches ``raw``; once the
    configuration is fixed, the same batch (same load id) lands normally.
    ``rows``: the records already rendered by :func:`prepare_rows` (then ``records`` is empty).
    """

    reference: str
    content_id: str
    records: list[Mapping[str, object]]
    payload: bytes | None = None
    first_row_no: int = 1
    warnings: tuple[str, ...] = ()
    archived: tuple[str, str] | None = None
    held: str | None = None
    rows: PreparedRows | None = None

    @property
    def count(self) -> int:
        """How many records the batch holds."""
        return self.rows.count if self.rows is not None else len(self.records)

    @property
    def fields(self) -> set[str]:
        """Every field any of its records has."""
        return set(self.rows.fields) if self.rows is not None else set().union(*self.records)


@dataclass(frozen=True)
class PreparedRows:
    """A batch's records in the form ``raw`` takes them: COPY text lines, their count and their fields."""

    text: bytes
    count: int
    fields: frozenset[str]
    #: Records quarantined instead of landed, as ``(row number, reason, masked text)``.
    rejected: tuple[tuple[int, str, str], ...] = ()


def prepare_rows(source: Source, batch: RecordBatch) -> PreparedRows:
    """Render a batch's records for :func:`land_record_batches` ahead of landing (e.g. in another process).

    The lines carry the batch's load id and row numbers, so they are exactly what landing the
    batch's ``records`` would write. A record holding text that UTF-8 cannot encode — an
    unpaired surrogate, which JSON can carry as an escape (``"\\ud800"``) — cannot be stored:
    it is rejected, with its row number and the fields at fault, to be quarantined; the
    others land.
    """
    keys = list(source.columns)
    load_id = make_load_id(source.id, batch.content_id)
    text = _copy_lines(batch, load_id, keys, set(keys))
    fields = frozenset().union(*batch.records)
    try:
        return PreparedRows(text.encode("utf-8"), len(batch.records), fields)
    except UnicodeEncodeError:
        return _rows_rejecting_unencodable(source, batch, load_id, fields)


def _rows_rejecting_unencodable(source: Source, batch: RecordBatch, load_id: str,
                                fields: frozenset[str]) -> PreparedRows:
    """The batch's rows, record by record, but those UTF-8 cannot encode, which are rejected."""
    from dataclasses import replace

    keys = list(source.columns)
    known = set(keys)
    lines: list[bytes] = []
    rejected: list[tuple[int, str, str]] = []
    for row_no, record in enumerate(batch.records, start=batch.first_row_no):
        line = _copy_lines(replace(batch, records=[record], first_row_no=row_no), load_id, keys, known)
        try:
            lines.append(line.encode("utf-8"))
            continue
        except UnicodeEncodeError:
            pass
        reason, shown = _unstorable({key: record_value_text(value) for key, value in record.items()})
        rejected.append((row_no, reason, shown))
    log.warning("%s: %s: %d records hold text UTF-8 cannot encode, quarantined at landing (first: row %d)",
                source.id, batch.reference, len(rejected), rejected[0][0])
    return PreparedRows(b"".join(lines), len(lines), fields, tuple(rejected))


def _unstorable(texts: Mapping[str, str | None]) -> tuple[str, str]:
    """Why a record holding text UTF-8 cannot encode is quarantined (naming the fields), and its masked text.

    Such text is an unpaired surrogate, which JSON can carry as an escape (``"\\ud800"``);
    the masked text shows it as that escape.
    """
    at_fault = [_escaped(name) for name, text in texts.items() if not _encodable(name + (text or ""))]
    reason = COLUMNS_RULE.reason("unstorable", fields="、".join(at_fault))
    return reason, mask_text(_escaped(",".join(text or "" for text in texts.values())))[:500]


def _escaped(text: str) -> str:
    """``text`` with what UTF-8 cannot encode written as its escape (``\\ud800``)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def prepare_plain_rows(source: Source, reference: str, content_id: str, rows: list[tuple],
                       first_row_no: int = 1, *, copy_ready: bool = False) -> PreparedRows | None:
    """What :func:`prepare_rows` makes of records that are exactly the mapped fields, given as value tuples.

    ``rows`` hold each record's values in the order of ``source.columns`` (e.g. decoded straight
    into tuples, without building a dict per record); every value must be text or ``None``.
    ``None`` when a value needs escaping: such records take :func:`prepare_rows`.
    ``copy_ready``: the caller knows that no value holds a character COPY text escapes (as of a
    JSON body without a backslash), so the lines are not checked for one.
    """
    head = _copy_head(make_load_id(source.id, content_id), reference)
    text = _plain_lines(rows, head, len(source.columns), first_row_no, copy_ready=copy_ready)
    return None if text is None else PreparedRows(text.encode("utf-8"), len(rows), frozenset(source.columns))


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: object) -> str:
    """One field in COPY text format (``\\N`` for null)."""
    text = record_value_text(value)
    return "\\N" if text is None else text.translate(_COPY_ESCAPES)


def _copy_lines(batch: RecordBatch, load_id: str, keys: list[str], known: set[str]) -> str:
    """The batch's records as COPY text lines: ``_load_id, _source_ref, _row_no, _extra`` and the fields.

    The common page — every record with exactly the mapped keys, every value text or null,
    nothing to escape — is formatted by C-level string operations and checked once as a whole
    (:func:`_plain_page_lines`); any other page takes the general path, record by record.
    """
    head = _copy_head(load_id, batch.reference)
    plain = _plain_page_lines(batch, head, keys)
    if plain is not None:
        return plain
    lines: list[str] = []
    for row_no, record in enumerate(batch.records, start=batch.first_row_no):
        extra_text = "\\N"
        if record.keys() != known:  # keys beyond the mapped ones go to _extra; a missing one is null
            extra = {k: v for k, v in record.items() if k not in known}
            if extra:
                extra_text = _copy_text(json.dumps(extra, ensure_ascii=False, default=str))
        fields = "\t".join(_copy_text(record.get(key)) for key in keys)
        lines.append(f"{head}{row_no}\t{extra_text}\t{fields}\n")
    return "".join(lines)


def _copy_head(load_id: str, reference: str) -> str:
    """The start of every COPY line of a batch: its load id and source reference."""
    return f"{_copy_text(load_id)}\t{_copy_text(reference)}\t"


def _plain_page_lines(batch: RecordBatch, head: str, keys: list[str]) -> str | None:
    """The COPY lines of a page whose records need no escaping or ``_extra``; ``None`` for any other page."""
    records = batch.records
    width = len(keys)
    # Same size as the mapping and every mapped key present (itemgetter raises otherwise): exactly the mapped keys.
    if not records or set(map(len, records)) != {width}:
        return None
    pick = itemgetter(*keys) if width > 1 else (lambda record: (record[keys[0]],))
    try:
        rows = list(map(pick, records))
    except KeyError:
        return None
    return _plain_lines(rows, head, width, batch.first_row_no)


def _plain_lines(rows: list[tuple], head: str, width: int, first_row_no: int, *,
                 copy_ready: bool = False) -> str | None:
    """COPY lines of value tuples (text or ``None``) that need no escaping; ``None`` if any value does.

    Nothing is checked per value: the page is joined first, then its backslashes, tabs and line
    breaks are counted once. Each line holds at least its null markers' backslashes, its
    separators' tabs and one newline, so equal totals prove that no value holds one of them.
    ``rows`` may be changed (null markers put in). ``copy_ready`` (see :func:`prepare_plain_rows`):
    not counted.
    """
    if not rows:
        return None
    nulls = 0
    null_marker = {None: "\\N"}.get
    try:
        for index, row in enumerate(rows):
            if None in row:
                nulls += row.count(None)
                rows[index] = tuple(map(null_marker, row, row))
        bodies = list(map("\t".join, rows))
    except TypeError:  # a number, a list, an object: the general path
        return None
    text = "".join([f"{head}{row_no}\t\\N\t{body}\n" for row_no, body in enumerate(bodies, start=first_row_no)])
    count = len(rows)
    if copy_ready:
        return text
    if (text.count("\\") != count * (head.count("\\") + 1) + nulls
            or text.count("\t") != count * (head.count("\t") + 1 + width)
            or text.count("\n") != count or "\r" in text):
        return None
    return text


def land_record_batches(conn: psycopg.Connection, registry: Registry, source: Source,
                        batches: list[RecordBatch], *, cursor: dict | None = None,
                        data_date: date | None = None, durable: bool = True) -> list[LandResult]:
    """Land consecutive batches (pages) in one transaction and a handful of round trips.

    Each batch becomes exactly what :func:`land_records` would make of it — its own load (load
    id from its content id, ledger row, archived payload, rows numbered from its
    ``first_row_no``, the same warnings) — and a batch already landed is skipped. What differs
    is the cost: the lock and the ledger look-up in one round trip, one ledger insert
    (pipelined), one ``COPY`` for all of them and the cursor with the timing in one more,
    instead of about ten round trips each. ``cursor`` (the position after the last batch) is
    saved in the same transaction. Run inside the caller's transaction it becomes a savepoint
    of it (call :func:`ensure_raw_table` before opening that transaction: creating the table
    commits).

    ``durable=False`` commits without waiting for the WAL flush (``synchronous_commit = off``).
    The transaction stays atomic — a server crash keeps or loses its data, ledger rows and
    cursor together, and a lost group is simply fetched and landed again — so a channel
    passes it for every group of a run but the last: the last, durable commit flushes the
    WAL up to itself, which makes every earlier group durable too. (A flush costs a few
    milliseconds; a run of 2,000 pages would otherwise pay it hundreds of times.)

    A batch with ``held`` set gets a ledger row with status ``held`` and the reason in
    ``error`` (outcome ``held``), and no rows; it must be the last batch, and ``cursor`` must be
    the position *before* it, so the next run asks for it again.
    """
    dataset = registry.dataset_of(source)
    ensure_raw_table(conn, dataset)
    if any(batch.held for batch in batches[:-1]):
        raise ValueError(f"{source.id}: only the last batch of a group can be held")
    started = time.perf_counter()
    prepared = []
    for batch in batches:
        sha256, archive_rel, size = batch.content_id, None, 0
        if batch.payload is not None:
            sha256, archive_rel = batch.archived or archive_payload(batch.payload)
            size = len(batch.payload)
        prepared.append((batch, make_load_id(source.id, batch.content_id), sha256, archive_rel, size))
    mapping = list(source.columns.items())
    known = set(source.columns)
    results: list[LandResult] = []
    with conn.transaction():
        ids = sorted({load_id for _, load_id, *_ in prepared})
        with conn.pipeline():
            if not durable:
                conn.execute("set local synchronous_commit = off")
            # In a fixed order, so two runs of the same source can never deadlock on each other's pages.
            conn.execute("select pg_advisory_xact_lock(hashtext(id))"
                         " from (select id from unnest(%s::text[]) as id order by id) as ordered", (ids,))
            # A statement of its own, after the lock: its snapshot sees whatever the lock waited for.
            lookup = conn.execute("select load_id, status, rows_received, landed_at from ops.loads"
                                  " where load_id = any(%s)", (ids,))
        existing = {row[0]: row for row in lookup.fetchall()}
        fresh: list[tuple[PreparedRows, str]] = []
        ledger_rows = []
        held_rows = []
        for batch, load_id, sha256, archive_rel, size in prepared:
            row = existing.get(load_id)
            # A failed batch, or one held before landing (no rows), has nothing in raw: land it now.
            retry = row is None or row[1] == "failed" or (row[1] == "held" and row[3] is None)
            if not retry or any(load_id == f[1] for f in fresh):
                results.append(LandResult(source.id, batch.reference, load_id, "already_landed",
                                          (row[2] or 0) if row else batch.count))
                continue
            unknown = sorted(batch.fields - known)
            warnings = list(batch.warnings)
            if unknown:
                warnings.append(f"fields not in the configuration were kept in _extra: {', '.join(unknown)}")
            if batch.held:
                held_rows.append((load_id, source.id, source.department, dataset.dataset, source.channel,
                                  batch.reference, sha256, size, archive_rel, batch.held,
                                  json.dumps(warnings, ensure_ascii=False), data_date))
                results.append(LandResult(source.id, batch.reference, load_id, "held", batch.count,
                                          error=batch.held, warnings=warnings))
                continue
            rows = batch.rows if batch.rows is not None else prepare_rows(source, batch)
            received = rows.count + len(rows.rejected)
            fresh.append((rows, load_id))
            ledger_rows.append((load_id, source.id, source.department, dataset.dataset, source.channel,
                                batch.reference, sha256, size, archive_rel, received,
                                json.dumps(warnings, ensure_ascii=False), data_date))
            results.append(LandResult(source.id, batch.reference, load_id, "landed", received, len(rows.rejected),
                                      warnings=warnings))
        if held_rows:
            conn.execute(
                "insert into ops.loads (load_id, source_id, department, dataset, channel, reference, sha256,"
                " bytes, archive_path, status, error, warnings, data_date)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'held', %s, %s, %s)"
                " on conflict (load_id) do update set status = 'held', error = excluded.error,"
                " warnings = excluded.warnings, received_at = now()", held_rows[0])
        if fresh:
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into ops.loads (load_id, source_id, department, dataset, channel, reference, sha256,"
                    " bytes, archive_path, status, rows_received, landed_at, warnings, data_date)"
                    " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'received', %s, now(), %s, %s)"
                    " on conflict (load_id) do update set status = 'received', error = null, received_at = now(),"
                    " rows_received = excluded.rows_received, landed_at = now(), warnings = excluded.warnings",
                    ledger_rows)
            statement = sql.SQL("copy {table} (_load_id, _source_ref, _row_no, _extra, {columns}) from stdin").format(
                table=sql.Identifier("raw", dataset.dataset),
                columns=sql.SQL(", ").join(sql.Identifier(f) for _, f in mapping))
            with conn.cursor() as cur, cur.copy(statement) as copy:
                for rows, _ in fresh:
                    copy.write(rows.text)
            for rows, load_id in fresh:
                if rows.rejected:
                    _quarantine_malformed(conn, load_id, dataset.dataset, list(rows.rejected))
        with conn.pipeline():
            if fresh:
                # The batches landed together; each is charged its share of the time.
                conn.execute("update ops.loads set land_seconds = %s where load_id = any(%s)",
                             ((time.perf_counter() - started) / len(fresh), [load_id for _, load_id in fresh]))
            if cursor is not None:
                last_landed = [load_id for batch, load_id, *_ in prepared if not batch.held]
                save_cursor(conn, source.id, cursor, last_landed[-1] if last_landed else None)
    for result in results:
        if result.outcome == "landed":
            log.info("%s: landed %s as %s: %d records", source.id, result.reference, result.load_id,
                     result.rows_received)
        elif result.outcome == "held":
            log.warning("%s: held %s as %s: %s", source.id, result.reference, result.load_id, result.error)
    return results
