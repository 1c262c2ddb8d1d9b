"""Template footers: the lines below a table that are not records (填表人, 审核人, 联系电话, 填报日期, 备注 …).

Departments' templates end with a few lines for the people who filled them in, often after a
blank row::

    …last record…
    ,,,,
    填表人：张三,,审核人：李四,,联系电话：0571-8888xxxx
    备注：
    1、罚款金额单位为万元

Landed as rows, each would be quarantined with a reason per empty required field and sent back
to the department as a problem row it never sent. A :class:`FooterRule` recognises them: the
footer is the run of rows at the *end* of a table that starts with a *label row* (its first
filled cell is one of the rule's labels, alone or followed by ``：``, ``:`` or a bracket), possibly
after blank rows, and holds nothing but more label rows, blank rows and one-cell note rows (the
numbered lines under 备注/说明). A label row followed by a record is data, not a footer: only
the end of the table is looked at, and at most ``max_rows`` rows of it.

:class:`FooterSplitter` applies the rule to a stream of rows (a workbook read row by row);
:func:`csv_footer` to the tail of a CSV file, so the fast path (one ``COPY`` straight from the
file) can stop before it. Nothing here touches the warehouse.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

__all__ = ["DEFAULT_FOOTER_LABELS", "FooterRule", "FooterSplitter", "csv_footer", "footer_text"]

#: The labels of the common templates' footers (the registry's default for a source).
DEFAULT_FOOTER_LABELS: tuple[str, ...] = (
    "填表人", "填报人", "制表人", "审核人", "审核", "复核人", "负责人", "单位负责人", "部门负责人", "分管领导",
    "联系人", "联系电话", "电话", "填报日期", "填表日期", "制表日期", "报送日期", "填报单位", "备注", "说明",
    "填报说明", "注",
)

#: What may follow a label in its cell (after NFKC: full-width ``：（【`` become ``:(`` and stay ``【``).
_AFTER_LABEL = ":(【[-—"

RowKind = Literal["blank", "label", "note", "data"]
Key = TypeVar("Key")


def _squeeze(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


@dataclass(frozen=True)
class FooterRule:
    """Which rows below a table are its footer (see the module docstring). ``labels`` are compared
    after NFKC normalisation without spaces, so ``填 表 人：`` matches ``填表人``."""

    labels: tuple[str, ...] = DEFAULT_FOOTER_LABELS
    max_rows: int = 20
    _keys: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _initials: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Longest first: 填报说明 before 填报…, so a label is matched whole.
        keys = tuple(sorted({_squeeze(label) for label in self.labels if label.strip()}, key=len, reverse=True))
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_initials", frozenset(key[0] for key in keys))

    def is_label(self, cell: str) -> bool:
        """Whether a cell opens a footer line: a label alone, or followed by a colon or a bracket."""
        head = cell.lstrip()[:1]
        if not head or unicodedata.normalize("NFKC", head)[:1] not in self._initials:
            return False  # most cells: no label starts with their first character
        text = _squeeze(cell)
        return any(text == key or (text.startswith(key) and text[len(key)] in _AFTER_LABEL) for key in self._keys)

    def kind(self, cells: Sequence[str | None]) -> RowKind:
        """``blank``, ``label`` (a footer line), ``note`` (one filled cell: a line under 备注) or ``data``."""
        filled = (cell for cell in cells if cell and not cell.isspace())
        first = next(filled, None)
        if first is None:
            return "blank"
        if self.is_label(first):
            return "label"
        return "note" if next(filled, None) is None else "data"


class FooterSplitter(Iterable[tuple[Key, list]]):
    """The rows of a stream but its footer; after the stream is exhausted, :attr:`footer` holds the footer's rows.

    Rows that might open a footer are held back (at most ``rule.max_rows``) until a record shows
    they were data after all, so the stream stays a stream.
    """

    def __init__(self, rows: Iterable[tuple[Key, list]], rule: FooterRule) -> None:
        self.rows = rows
        self.rule = rule
        self.footer: list[tuple[Key, list]] = []

    def __iter__(self) -> Iterator[tuple[Key, list]]:
        held: list[tuple[Key, list]] = []  # blank rows since the last record, then the candidate footer
        started = False  # a label row is among ``held``
        for row in self.rows:
            kind = self.rule.kind(row[1])
            if len(held) >= self.rule.max_rows:  # longer than a footer: what was held is data
                yield from held
                held, started = [], False
            if kind == "label":
                started = True
                held.append(row)
            elif kind == "blank" or (kind == "note" and started):
                held.append(row)
            else:
                yield from held
                held, started = [], False
                yield row
        if started:
            self.footer = held
        else:
            yield from held


def footer_text(rows: Iterable[tuple[object, Sequence[str | None]]], limit: int = 300) -> str:
    """The footer's filled lines as one line of text, cells joined by a space and lines by `` | ``."""
    lines = [" ".join(cell.strip() for cell in cells if cell and cell.strip()) for _, cells in rows]
    text = " | ".join(line for line in lines if line)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def csv_footer(path: Path, *, data_offset: int, encoding: str, delimiter: str, rule: FooterRule,
               tail_bytes: int = 1 << 16) -> tuple[int, list[list[str]]] | None:
    """The footer of a CSV file: the byte offset where it starts and its lines as cells; None without one.

    Only the file's last ``tail_bytes`` are read (a footer is a few lines; the data before it may be
    gigabytes). Footer lines are read as physical lines, as title rows are: templates do not put line
    breaks in them.
    """
    size = path.stat().st_size
    start = max(data_offset, size - tail_bytes)
    if start >= size:
        return None
    with path.open("rb") as handle:
        handle.seek(start)
        chunk = handle.read()
    position = 0
    if start > data_offset:  # the read began inside a line: drop that part
        position = chunk.find(b"\n") + 1
        if position == 0:
            return None
    lines: list[tuple[int, list[str]]] = []
    codec = encoding.replace("-sig", "")
    while position < len(chunk):
        newline = chunk.find(b"\n", position)
        end = len(chunk) if newline < 0 else newline + 1
        text = chunk[position:end].decode(codec, errors="replace").rstrip("\r\n")
        try:
            cells = next(csv.reader([text], delimiter=delimiter), [])
        except csv.Error:
            cells = [text, text]  # unreadable as one line (part of a quoted record): data
        lines.append((start + position, cells))
        position = end
    splitter = FooterSplitter(lines[-rule.max_rows:], rule)
    for _ in splitter:
        pass
    if not splitter.footer:
        return None
    return splitter.footer[0][0], [cells for _, cells in splitter.footer]
