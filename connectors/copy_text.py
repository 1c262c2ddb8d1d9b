"""A record as raw keeps it: each value as text, and records as PostgreSQL ``COPY`` text lines.

One rendering for every record-shaped source — a JSON or XML file, a REST or SOAP page, a
front-end database row — so a value lands as the same text whichever way it came
(:func:`value_text`). The lines are ``COPY … FROM STDIN`` text format: ``_load_id``,
``_source_ref``, ``_row_no``, ``_extra`` and the mapped fields, tab-separated, ``\\N`` for null,
backslash, tab and line breaks escaped.

The common page — every record exactly the mapped keys, every value text or null, nothing to
escape — is formatted by C-level string operations and checked once as a whole
(:func:`plain_record_lines`, :func:`plain_lines`); any other takes :func:`record_lines`, field
by field. Both give the same lines (``tests/unit/core/test_copy_text.py``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from operator import itemgetter

__all__ = ["COPY_ESCAPES", "field_text", "line_head", "plain_lines", "plain_record_lines", "record_lines",
           "value_text"]

COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def value_text(value: object) -> str | None:
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


def field_text(value: object) -> str:
    """One field in COPY text format (``\\N`` for null)."""
    text = value_text(value)
    return "\\N" if text is None else text.translate(COPY_ESCAPES)


def line_head(load_id: str, reference: str) -> str:
    """The start of every COPY line of a batch: its load id and source reference."""
    return f"{field_text(load_id)}\t{field_text(reference)}\t"


def record_lines(records: Sequence[Mapping[str, object]], head: str, keys: list[str], known: set[str],
                 first_row_no: int) -> str:
    """COPY lines of any records, field by field: ``keys`` in order, every other key in ``_extra`` as JSON."""
    lines: list[str] = []
    for row_no, record in enumerate(records, start=first_row_no):
        extra_text = "\\N"
        if record.keys() != known:  # keys beyond the mapped ones go to _extra; a missing one is null
            extra = {k: v for k, v in record.items() if k not in known}
            if extra:
                extra_text = field_text(json.dumps(extra, ensure_ascii=False, default=str))
        fields = "\t".join(field_text(record.get(key)) for key in keys)
        lines.append(f"{head}{row_no}\t{extra_text}\t{fields}\n")
    return "".join(lines)


def plain_record_lines(records: Sequence[Mapping[str, object]], head: str, keys: list[str],
                       first_row_no: int) -> str | None:
    """The COPY lines of records that need no escaping or ``_extra``; ``None`` for any other records."""
    width = len(keys)
    # Same size as the mapping and every mapped key present (itemgetter raises otherwise): exactly the mapped keys.
    if not records or set(map(len, records)) != {width}:
        return None
    pick = itemgetter(*keys) if width > 1 else (lambda record: (record[keys[0]],))
    try:
        rows = list(map(pick, records))
    except KeyError:
        return None
    return plain_lines(rows, head, width, first_row_no)


def plain_lines(rows: list[tuple], head: str, width: int, first_row_no: int, *,
                 copy_ready: bool = False) -> str | None:
    """COPY lines of value tuples (text or ``None``) that need no escaping; ``None`` if any value does.

    Nothing is checked per value: the page is joined first, then its backslashes, tabs and line
    breaks are counted once. Each line holds at least its null markers' backslashes, its
    separators' tabs and one newline, so equal totals prove that no value holds one of them.
    ``rows`` may be changed (null markers put in). ``copy_ready``: the caller knows that no value
    holds a character COPY text escapes (as of a JSON body without a backslash): nothing is counted.
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
