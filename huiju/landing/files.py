"""Landing a delivered file: one ``COPY`` straight from the file, or row by row when rows need attention.

A well-formed CSV goes into the raw table with a single ``COPY`` (PostgreSQL parses and
transcodes GBK itself; the meta columns default to transaction-local settings, see
:mod:`huiju.landing.raw`). Files with extra columns, ragged rows, workbooks, JSON or XML are
streamed row by row into one ``COPY``, and malformed records are quarantined with their row
numbers instead of failing the batch.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path

import psycopg
from huiju_connectors.files import (
    CsvLayout,
    FileFormatError,
    detect_encoding,
    digest_file,
    iter_csv_records,
    open_csv_data,
    read_csv_layout,
    read_json,
    read_xlsx,
    read_xml,
)
from huiju_connectors.guards import SheetLimits
from psycopg import sql

from huiju.archive import archive_file
from huiju.landing.columns import ColumnMap, map_columns
from huiju.landing.raw import ensure_raw_table
from huiju.landing.results import LandingError, LandResult, _record_failure, quarantine_malformed
from huiju.landing.rows import COLUMNS_RULE, encodable, unstorable
from huiju.ledger import get_load, make_load_id, record_repeat
from huiju.masking import mask_all, mask_text
from huiju.registry import Dataset, Registry, Source

log = logging.getLogger("huiju.landing")

_PG_ENCODING = {"utf-8-sig": "UTF8", "utf-8": "UTF8", "gb18030": "GB18030"}


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
            if screen_text is not None and not encodable("".join(filter(None, cells))):
                malformed.append((row_no, *unstorable(dict(zip(screen_text, cells, strict=False)))))
                continue
            extra = {h: cells[i] for i, h in extras if i < len(cells) and cells[i] not in (None, "")}
            copy.write_row([row_no, json.dumps(extra, ensure_ascii=False) if extra else None,
                            *(cells[i] or None if i < len(cells) else None for i in indexes)])
            landed += 1
    if malformed:
        log.warning("%s: %s: %d malformed rows quarantined at landing (first: row %d)", source_id, reference,
                    len(malformed), malformed[0][0])
    return landed, malformed


def _records_of(source: Source, path: Path,
                reference: str) -> tuple[list[str], Iterator[tuple[int, list]], CsvLayout | None]:
    if source.format == "xlsx":
        sheet = read_xlsx(path, header_row=source.header_row, sheet=source.sheet,
                          limits=SheetLimits(max_cells=source.max_sheet_cells, max_columns=source.max_sheet_columns))
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
              reference: str | None = None, data_date: date | None = None,
              received_at: datetime | None = None) -> LandResult:
    """Land one delivered file of ``source`` exactly once (see the module docstring).

    ``reference`` is the name the department gave the file (default: its file name).
    ``received_at`` is when the department delivered it, for a delivery that reached the
    platform later than it was sent (a department's archive of earlier submissions imported
    when it joins, with the arrival time of each e-mail or upload); default: now.
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
                " archive_path, status, warnings, data_date, received_at)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'received', %s, %s, coalesce(%s, now()))"
                " on conflict (load_id) do update set status = 'received', error = null,"
                " reference = excluded.reference,"
                " warnings = excluded.warnings, data_date = excluded.data_date, received_at = excluded.received_at",
                (load_id, source.id, source.department, dataset.dataset, source.channel, mask_text(reference),
                 digest.sha256, digest.bytes, archive_rel, json.dumps(mask_all(warnings), ensure_ascii=False),
                 data_date, received_at),
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
                quarantine_malformed(conn, load_id, dataset.dataset, malformed)
            received = landed + len(malformed)
            conn.execute(
                "update ops.loads set rows_received = %s, landed_at = now(), land_seconds = %s where load_id = %s",
                (received, time.perf_counter() - started, load_id),
            )
    except (LandingError, FileFormatError, UnicodeDecodeError) as exc:
        message = mask_text(str(exc) if isinstance(exc, LandingError) else f"{source.id}: {reference}: {exc}")
        _record_failure(conn, source, dataset, reference, digest.sha256, digest.bytes, archive_rel, load_id,
                        message, data_date)
        log.error("%s", message)
        return LandResult(source.id, reference, load_id, "failed", error=message)
    log.info("%s: landed %s as %s: %d rows (%d malformed)", source.id, reference, load_id, received, len(malformed))
    return LandResult(source.id, reference, load_id, "landed", received, len(malformed), warnings=warnings)
