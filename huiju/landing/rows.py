"""A batch of records rendered as raw takes them (COPY text), ready to land — possibly in another process.

The rendering itself is :mod:`huiju_connectors.copy_text`; here the lines get the batch's load id
and row numbers, and a record holding text UTF-8 cannot encode is set aside to be quarantined.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from huiju_connectors.copy_text import line_head, plain_lines, plain_record_lines, record_lines, value_text

from huiju.ledger import make_load_id
from huiju.masking import mask_text
from huiju.registry import Source
from huiju.rules import RULES

log = logging.getLogger("huiju.landing")

#: The rule a record breaks when it cannot become a row as sent (quarantined at landing).
COLUMNS_RULE = RULES["columns"]


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
        reason, shown = unstorable({key: value_text(value) for key, value in record.items()})
        rejected.append((row_no, reason, shown))
    log.warning("%s: %s: %d records hold text UTF-8 cannot encode, quarantined at landing (first: row %d)",
                source.id, batch.reference, len(rejected), rejected[0][0])
    return PreparedRows(b"".join(lines), len(lines), fields, tuple(rejected))


def unstorable(texts: Mapping[str, str | None]) -> tuple[str, str]:
    """Why a record holding text UTF-8 cannot encode is quarantined (naming the fields), and its masked text.

    Such text is an unpaired surrogate, which JSON can carry as an escape (``"\\ud800"``);
    the masked text shows it as that escape.
    """
    at_fault = [_escaped(name) for name, text in texts.items() if not encodable(name + (text or ""))]
    reason = COLUMNS_RULE.reason("unstorable", fields="、".join(at_fault))
    return reason, mask_text(_escaped(",".join(text or "" for text in texts.values())))[:500]


def _escaped(text: str) -> str:
    """``text`` with what UTF-8 cannot encode written as its escape (``\\ud800``)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def encodable(text: str) -> bool:
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
    head = line_head(make_load_id(source.id, content_id), reference)
    text = plain_lines(rows, head, len(source.columns), first_row_no, copy_ready=copy_ready)
    return None if text is None else PreparedRows(text.encode("utf-8"), len(rows), frozenset(source.columns))


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_lines(batch: RecordBatch, load_id: str, keys: list[str], known: set[str]) -> str:
    """The batch's records as COPY text lines: ``_load_id, _source_ref, _row_no, _extra`` and the fields.

    The common page is formatted at once (:func:`~huiju_connectors.copy_text.plain_record_lines`);
    any other page takes the general path, record by record.
    """
    head = line_head(load_id, batch.reference)
    plain = plain_record_lines(batch.records, head, keys, batch.first_row_no)
    if plain is not None:
        return plain
    return record_lines(batch.records, head, keys, known, batch.first_row_no)
