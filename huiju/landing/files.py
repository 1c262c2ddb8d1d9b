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
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
from huiju_connectors.files import (
    CsvLayout,
    FileFormatError,
    SheetData,
    detect_encoding,
    digest_file,
    iter_csv_records,
    open_csv_data,
    read_csv_layout,
    read_json,
    read_xlsx,
    read_xml,
)
from huiju_connectors.footers import FooterRule, FooterSplitter, footer_text
from huiju_connectors.guards import SheetLimits
from psycopg import sql

from huiju.archive import archive_file, archive_manifest, archive_relpath
from huiju.landing.codes import decode_landed
from huiju.landing.columns import ColumnMap, map_columns
from huiju.landing.raw import ensure_raw_table, summarise_landed
from huiju.landing.results import LandingError, LandResult, _record_failure, quarantine_cells, quarantine_malformed
from huiju.landing.rows import COLUMNS_RULE, encodable, unstorable
from huiju.ledger import get_load, make_load_id, record_repeat
from huiju.masking import mask_all, mask_text
from huiju.registry import Dataset, Registry, Source
from huiju.rules import RULES

log = logging.getLogger("huiju.landing")

#: A workbook cell holding a formula's error value (quarantined while landing, naming the cell).
CELL_ERROR_RULE = RULES["cell_error"]

_PG_ENCODING = {"utf-8-sig": "UTF8", "utf-8": "UTF8", "gb18030": "GB18030"}

# Originals are copied into the archive (and flushed to disk) beside the landing of their rows, not before it.
_ARCHIVER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="huiju-archive")


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
        return sheet.header, _Template(sheet, footer_rule(source)), None
    if source.format == "json":
        records = read_json(path, records_key=source.records_key)
        return records.header, records.rows, None
    if source.format == "xml":
        assert source.record_element is not None  # the registry requires it for xml
        records = read_xml(path, record_element=source.record_element)
        return records.header, records.rows, None
    encoding = detect_encoding(path, source.encoding)
    layout = read_csv_layout(path, encoding=encoding, header_row=source.header_row, delimiter=source.delimiter,
                             footer=footer_rule(source))
    return layout.header, _Template(iter_csv_records(path, layout, source.delimiter), None), layout


def footer_rule(source: Source) -> FooterRule | None:
    """The source's footer rule (its ``footer:`` settings), or None when it lands every row."""
    if not source.footer.enabled:
        return None
    return FooterRule(labels=source.footer.all_labels, max_rows=source.footer.max_rows)


class _Template:
    """A delivered table's rows as landing reads them, and what its template held besides records.

    Over a sheet (:class:`~huiju_connectors.files.SheetData`), the footer is split off as the rows
    stream (:class:`~huiju_connectors.footers.FooterSplitter`) and the error cells are known; over
    a CSV file the footer was cut off before (:attr:`CsvLayout.data_end`) and the last row number
    read is kept, to number its lines.
    """

    def __init__(self, rows: Iterable[tuple[int, list]] | SheetData, footer: FooterRule | None) -> None:
        self.sheet = rows if isinstance(rows, SheetData) else None
        stream = rows.rows if isinstance(rows, SheetData) else rows
        self.splitter = FooterSplitter(stream, footer) if footer is not None and self.sheet is not None else None
        self.rows: Iterable[tuple[int, list]] = self.splitter if self.splitter is not None else stream
        self.last_row: int | None = None

    def __iter__(self) -> Iterator[tuple[int, list]]:
        for row in self.rows:
            self.last_row = row[0]
            yield row

    def footer_rows(self, layout: CsvLayout | None, landed: int) -> list[tuple[int, list]]:
        """The footer's rows with their row numbers (``landed``: rows the fast CSV path copied)."""
        if self.splitter is not None:
            return self.splitter.footer
        if layout is None or not layout.footer:
            return []
        first = (self.last_row + 1) if self.last_row is not None else layout.first_data_row + landed
        return list(enumerate(layout.footer, start=first))

    def warnings(self, source: Source, columns: ColumnMap, layout: CsvLayout | None, landed: int) -> list[str]:
        """What the ledger is told about the template: its footer left out, error cells outside the data."""
        notes = []
        footer = self.footer_rows(layout, landed)
        if footer:
            notes.append(f"{len(footer)} footer row(s) below the data not landed (rows {footer[0][0]}-{footer[-1][0]}, "
                         f"footer rule of the source): {footer_text(footer)}")
        if self.sheet is not None and self.sheet.error_only_rows:
            rows = self.sheet.error_only_rows
            notes.append(f"{len(rows)} row(s) held only formula error values and no data, not landed "
                         f"(rows {_ranges(rows)})")
        if self.sheet is not None:
            outside = [e.cell for row_no, errors in self.sheet.errors.items() for e in errors
                       if row_no not in self.sheet.error_only_rows and e.column not in columns.fields_by_index
                       and row_no > source.header_row]
            if outside:
                notes.append(f"error values in columns not in the configuration (kept in _extra): "
                             f"{', '.join(outside[:20])}{' …' if len(outside) > 20 else ''}")
        return notes

    def cell_violations(self, source: Source, columns: ColumnMap,
                        malformed: list[tuple[int, str, str]]) -> list[tuple[int, list[dict[str, object]]]]:
        """Landed rows with error cells in mapped columns: each cell a violation naming it (``数据!C12``)."""
        if self.sheet is None or not self.sheet.errors:
            return []
        skipped = {row_no for row_no, *_ in malformed} | set(self.sheet.error_only_rows)
        skipped |= {row_no for row_no, _ in self.footer_rows(None, 0)}
        found = []
        for row_no in sorted(self.sheet.errors):
            if row_no in skipped or row_no <= source.header_row:
                continue
            violations: list[dict[str, object]] = []
            for error in self.sheet.errors[row_no]:
                field_name = columns.fields_by_index.get(error.column)
                if field_name is None:
                    continue
                header = source.header_for_field[field_name]
                code = error.code if error.code in CELL_ERROR_RULE.reasons else "other"
                violations.append({"field": field_name, "header": header, "rule": CELL_ERROR_RULE.name,
                                   "problem": code, "value": error.code, "cell": error.cell,
                                   "reason": CELL_ERROR_RULE.reason(code, cell=error.cell, h=header, value=error.code)})
            if violations:
                found.append((row_no, violations))
        return found


def _ranges(numbers: list[int]) -> str:
    """``[3, 4, 5, 9]`` as ``3-5, 9`` (the first ten ranges)."""
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    text = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans[:10])
    return text + (" …" if len(spans) > 10 else "")


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
    # The copy of the original runs while the rows go in: it need only be in place when the batch commits
    # (waited for at the end of the transaction, and on every other way out), so it costs no time of its own.
    archiving = _ARCHIVER.submit(archive_file, path, digest.sha256)
    archive_rel = archive_relpath(digest.sha256)
    archive_manifest({"kind": "file", "load_id": load_id, "source_id": source.id, "channel": source.channel,
                      "reference": reference, "archive_path": archive_rel, "data_date": data_date,
                      "received_at": (received_at or datetime.now(UTC)).isoformat()})
    try:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (load_id,))
            existing = get_load(conn, load_id)
            if existing is not None and existing.status != "failed":
                archiving.result()
                if existing.reference == reference:
                    return LandResult(source.id, reference, load_id, "already_landed", existing.rows_received or 0)
                record_repeat(conn, source.id, reference, digest.sha256, load_id)
                log.info("%s: %s repeats %s (already landed as %s)", source.id, reference, existing.reference, load_id)
                return LandResult(source.id, reference, load_id, "repeat")
            header, records, layout = _records_of(source, path, reference)
            columns, warnings = map_columns(source, dataset, header, reference)
            conn.execute(
                "insert into ops.loads (load_id, source_id, department, dataset, channel, reference, sha256, bytes,"
                " archive_path, status, warnings, data_date, received_at, origin)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'received', %s, %s, coalesce(%s, now()), %s)"
                " on conflict (load_id) do update set status = 'received', error = null,"
                " reference = excluded.reference,"
                " warnings = excluded.warnings, data_date = excluded.data_date, received_at = excluded.received_at",
                (load_id, source.id, source.department, dataset.dataset, source.channel, mask_text(reference),
                 digest.sha256, digest.bytes, archive_rel, json.dumps(mask_all(warnings), ensure_ascii=False),
                 data_date, received_at, source.origin),
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
            summarise_landed(conn, dataset.dataset)
            if malformed:
                quarantine_malformed(conn, load_id, dataset.dataset, malformed)
            template = records if isinstance(records, _Template) else None
            if template is not None:
                cells = template.cell_violations(source, columns, malformed)
                if cells:
                    quarantine_cells(conn, load_id, dataset.dataset, cells)
                warnings += template.warnings(source, columns, layout, landed)
            decode_landed(conn, registry, source, [load_id])  # after the cells: it adds to their quarantine rows
            received = landed + len(malformed)
            archiving.result()
            conn.execute(
                "update ops.loads set rows_received = %s, landed_at = now(), land_seconds = %s, warnings = %s"
                " where load_id = %s",
                (received, time.perf_counter() - started, json.dumps(mask_all(warnings), ensure_ascii=False),
                 load_id),
            )
    except (LandingError, FileFormatError, UnicodeDecodeError) as exc:
        archiving.result()
        message = mask_text(str(exc) if isinstance(exc, LandingError) else f"{source.id}: {reference}: {exc}")
        _record_failure(conn, source, dataset, reference, digest.sha256, digest.bytes, archive_rel, load_id,
                        message, data_date)
        log.error("%s", message)
        return LandResult(source.id, reference, load_id, "failed", error=message)
    log.info("%s: landed %s as %s: %d rows (%d malformed)", source.id, reference, load_id, received, len(malformed))
    return LandResult(source.id, reference, load_id, "landed", received, len(malformed), warnings=warnings)
