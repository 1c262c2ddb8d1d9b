"""What landing tells its caller and the ledger: a batch's outcome, a refused batch, rows quarantined while landing."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date

import psycopg

from huiju.ledger import make_load_id
from huiju.masking import mask_text
from huiju.registry import Dataset, Registry, Source

log = logging.getLogger("huiju.landing")


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


def _record_failure(conn: psycopg.Connection, source: Source, dataset: Dataset, reference: str, sha256: str,
                    size: int, archive_rel: str | None, load_id: str, message: str, data_date: date | None) -> None:
    with conn.transaction():
        conn.execute(
            "insert into ops.loads (load_id, source_id, department, dataset, channel, reference, sha256, bytes,"
            " archive_path, status, error, data_date, origin)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'failed', %s, %s, %s)"
            " on conflict (load_id) do update set status = 'failed', error = excluded.error"
            " where ops.loads.status = 'failed'",
            (load_id, source.id, source.department, dataset.dataset, source.channel, mask_text(reference), sha256,
             size, archive_rel, mask_text(message), data_date, source.origin),
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
    return LandResult(source.id, reference, load_id, "failed", error=mask_text(error))


def quarantine_malformed(conn: psycopg.Connection, load_id: str, dataset: str,
                         malformed: list[tuple[int, str, str]]) -> None:
    """Quarantine records that could not become rows as sent: ``(row number, reason, masked text)`` each."""
    with conn.cursor() as cur, cur.copy(
        "copy quarantine.rows (load_id, row_no, dataset, violations, reasons) from stdin"
    ) as copy:
        for row_no, reason, text in malformed:
            violation = {"field": None, "header": None, "rule": "columns", "value": text, "reason": reason}
            copy.write_row([load_id, row_no, dataset, json.dumps([violation], ensure_ascii=False), reason])


def quarantine_cells(conn: psycopg.Connection, load_id: str, dataset: str,
                     rows: list[tuple[int, list[dict[str, object]]]]) -> None:
    """Quarantine landed rows for cells found wrong while landing (a workbook's error values): ``(row number,
    violations)`` each, a violation naming its field, header, rule, value and reason. Validation adds the
    rules' own violations of such a row to it (:func:`huiju.checks.build_quarantine_sql`)."""
    with conn.cursor() as cur, cur.copy(
        "copy quarantine.rows (load_id, row_no, dataset, violations, reasons) from stdin"
    ) as copy:
        for row_no, violations in rows:
            copy.write_row([load_id, row_no, dataset, json.dumps(violations, ensure_ascii=False),
                            "；".join(str(v["reason"]) for v in violations)])
