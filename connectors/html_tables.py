"""HTML tables read like any other file: a page's table found by its column headers, its rows as text cells.

Public list pages (行政处罚公示, 红黑名单) are HTML written by a department's CMS: GBK or UTF-8,
merged cells, layout tables around the data table, scripts, and sometimes hostile markup. A page
is parsed by lxml's HTML parser (libxml2) with comments and processing instructions dropped and no
network access; ``<script>``, ``<style>``, ``<noscript>`` and ``<template>`` are removed before any
text is read, so nothing a page runs or hides reaches a cell. libxml2 stops at 256 levels of
nesting: a page nested deeper is refused (:class:`HtmlRefused`) rather than read half-way.

:func:`read_page` returns the page's table whose header row holds the wanted column headers
(compared as :func:`huiju_connectors.files.normalise_header` compares a file's), with the row
numbers of the table (its header row is row ``header_row``), merged cells spread out (a ``rowspan``'s
text in each row it covers, a ``colspan``'s in its first column), and the page's links for pagination.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin

import lxml.etree
from huiju_connectors.files import normalise_header

__all__ = ["HtmlPage", "HtmlRefused", "HtmlTable", "decode_html", "read_page"]

#: Elements whose content is never data.
_DROPPED = ("script", "style", "noscript", "template")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._-]+)""", re.IGNORECASE)
#: What departments' pages declare, read with the encoding that is a superset of it.
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030", "gb18030": "gb18030"}
_MAX_SPAN = 1_000  # a colspan or rowspan larger than this is a hostile page, not a merged cell
_HEADER_SEARCH_ROWS = 10  # a table's header is among its first rows (title rows may come first)


class HtmlRefused(ValueError):
    """A page the platform does not read (nested too deep, undecodable, too many records); names the reason."""


@dataclass(frozen=True)
class HtmlTable:
    """A page's data table: its header (row ``header_row`` of the table) and the rows after it."""

    header: list[str]
    rows: list[tuple[int, list[str | None]]]  # (row number in the table, cells)
    header_row: int
    index: int  # which table of the page (0-based), for messages


@dataclass(frozen=True)
class HtmlPage:
    """A parsed page: the table found (or None) and the targets of its links with their text."""

    table: HtmlTable | None
    links: list[tuple[str, str]] = field(default_factory=list)  # (text, absolute URL)
    tables: int = 0  # how many tables the page has


def decode_html(body: bytes, content_type: str | None) -> str:
    """A page's text: the charset of its ``Content-Type``, else of its ``<meta>``, else UTF-8 (GBK as GB18030).

    Decoding is strict: a page that is not valid text in its declared encoding is refused, never
    read with replacement characters that would land as data.
    """
    declared = None
    if content_type:
        match = re.search(r"charset\s*=\s*\"?([A-Za-z0-9._-]+)", content_type, re.IGNORECASE)
        declared = match.group(1) if match else None
    if declared is None:
        match = _META_CHARSET.search(body[:4096])
        declared = match.group(1).decode("ascii") if match else None
    encoding = (declared or "utf-8").lower()
    encoding = _SUPERSETS.get(encoding, encoding)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise HtmlRefused(f"the page declares an unknown encoding {declared!r}") from None
    if encoding.replace("_", "-") in ("utf-8", "utf8") and body.startswith(codecs.BOM_UTF8):
        body = body[3:]
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise HtmlRefused(f"the page is not valid {encoding} text (byte {exc.start})") from None


def _parse(text: str) -> lxml.etree._Element:
    # lxml.etree's own HTML parser: plain elements (lxml.html's element classes cost a look-up per element).
    parser = lxml.etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True, huge_tree=False)
    # A <meta charset> in text already decoded would make libxml2 decode it a second time: it is removed.
    text = re.sub(r"<meta[^>]*charset[^>]*>", "", text, flags=re.IGNORECASE)
    try:
        document = lxml.etree.fromstring(text or "<html></html>", parser=parser)
    except (lxml.etree.ParserError, lxml.etree.XMLSyntaxError, ValueError) as exc:
        raise HtmlRefused(f"the page cannot be parsed as HTML ({exc})") from None
    if document is None:
        raise HtmlRefused("the page is empty")
    for error in parser.error_log:
        if error.type_name == "ERR_RESOURCE_LIMIT" or "Excessive depth" in error.message:
            raise HtmlRefused("the page nests its markup more than 256 levels deep; the platform does not read it")
    lxml.etree.strip_elements(document, *_DROPPED, with_tail=False)
    return document


def _text(cell: lxml.etree._Element) -> str | None:
    """A cell's text, blanks collapsed; None for an empty cell or one holding a table (a layout cell)."""
    if len(cell):  # markup inside: its text, unless it is a layout cell around another table
        if cell.find(".//table") is not None:
            return None
        text = " ".join("".join(cell.itertext()).split())
    else:
        text = " ".join(cell.text.split()) if cell.text else ""
    return text or None


def _span(cell: lxml.etree._Element, name: str) -> int:
    given = cell.get(name)
    if given is None:
        return 1
    try:
        value = int(given.strip() or 1)
    except ValueError:
        return 1
    if value > _MAX_SPAN:
        raise HtmlRefused(f"a table cell spans {value} {'columns' if name == 'colspan' else 'rows'}, more than "
                          f"{_MAX_SPAN}")
    return max(1, value)


_ROWS = lxml.etree.XPath("./tr|./thead/tr|./tbody/tr|./tfoot/tr")
_CELLS = lxml.etree.XPath("./th|./td")


_HAS_SPANS = lxml.etree.XPath("boolean(.//*[(self::td or self::th) and (@colspan or @rowspan)])")


def _table_rows(table: lxml.etree._Element) -> Iterator[list[str | None]]:
    """The table's own rows (not those of tables nested in it), merged cells spread out."""
    if not _HAS_SPANS(table):  # the common list: cell by cell, nothing to spread
        for row in _ROWS(table):
            yield [_text(cell) for cell in _CELLS(row)]
        return
    carried: dict[int, tuple[int, str | None]] = {}  # column → (rows still covered, text) of a rowspan
    for row in _ROWS(table):
        cells: list[str | None] = []
        for cell in _CELLS(row):
            _fill_carried(cells, carried)
            text = _text(cell)
            rowspan = _span(cell, "rowspan")
            for offset in range(_span(cell, "colspan")):
                if rowspan > 1:
                    carried[len(cells)] = (rowspan - 1, text if offset == 0 else None)
                cells.append(text if offset == 0 else None)
        _fill_carried(cells, carried)
        yield cells


def _fill_carried(cells: list[str | None], carried: dict[int, tuple[int, str | None]]) -> None:
    """Append the cells that rowspans from rows above cover at the row's current column."""
    while len(cells) in carried:
        left, text = carried[len(cells)]
        if left <= 1:
            del carried[len(cells)]
        else:
            carried[len(cells)] = (left - 1, text)
        cells.append(text)


def read_page(text: str, *, url: str, wanted: Collection[str], max_records: int = 100_000,
              links: bool = True) -> HtmlPage:
    """Parse a page and find its data table: the first whose header row (among its first rows) holds
    every header in ``wanted`` (normalised). Links (``links``: for a list paged by its 下一页 link) are
    resolved against ``url``."""
    document = _parse(text)
    keys = {normalise_header(h) for h in wanted}
    tables = document.xpath("//table")
    found = None
    for index, table in enumerate(tables):
        rows = _table_rows(table)
        for number, cells in enumerate(rows, start=1):
            if number > _HEADER_SEARCH_ROWS:
                break
            if len(cells) >= len(keys) and keys <= {normalise_header(c) for c in cells if c}:
                data: list[tuple[int, list[str | None]]] = []
                for row_no, row in enumerate(rows, start=number + 1):
                    if any(row):
                        data.append((row_no, row))
                        if len(data) > max_records:
                            raise HtmlRefused(f"the table holds more than max_page_records ({max_records}) rows")
                found = HtmlTable(header=[c or "" for c in cells], rows=data, header_row=number, index=index)
                break
        if found is not None:
            break
    targets = [(" ".join("".join(a.itertext()).split()), urljoin(url, a.get("href", "")))
               for a in document.iter("a") if a.get("href")] if links else []
    return HtmlPage(table=found, links=targets, tables=len(tables))
