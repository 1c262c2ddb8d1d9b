"""Landing: a department's batch copied as received into ``raw.<dataset>``, with its ledger row.

Exactly once by design:

- the load id is deterministic (source + sha256 of the content), so a retry finds its own row;
- data, ledger row and any quarantined malformed rows commit in one transaction, under an
  advisory lock on the load id: a load killed at any instant leaves nothing or everything;
- content already landed for the source is recorded as a repeat and not landed again.

By concern: :mod:`.raw` (the raw tables' DDL), :mod:`.columns` (a file's header onto the
dataset's fields), :mod:`.files` (a delivered file: one ``COPY`` straight from it, or row by
row), :mod:`.records` (records with their cursor: a page, a database batch, groups of pages),
:mod:`.rows` (records rendered as COPY text ahead of landing), :mod:`.codes` (values sent as national
codes, decoded to names), :mod:`.results` (outcomes, refused batches, rows quarantined while landing).
"""

from __future__ import annotations

from huiju.landing.columns import ColumnMap, map_columns
from huiju.landing.files import land_file
from huiju.landing.raw import ensure_raw_table
from huiju.landing.records import archive_payload, land_record_batches, land_records
from huiju.landing.results import LandingError, LandResult, quarantine_malformed, record_failed
from huiju.landing.rows import PreparedRows, RecordBatch, prepare_plain_rows, prepare_rows

__all__ = [
    "ColumnMap",
    "LandResult",
    "LandingError",
    "PreparedRows",
    "RecordBatch",
    "archive_payload",
    "ensure_raw_table",
    "land_file",
    "land_record_batches",
    "land_records",
    "map_columns",
    "prepare_plain_rows",
    "prepare_rows",
    "quarantine_malformed",
    "record_failed",
]
