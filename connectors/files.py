"""Reading the files departments send: encoding detection, CSV and xlsx headers and rows.

Nothing here touches the warehouse; :mod:`huiju.landing` decides how the rows are landed.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring, iterparse
from huiju_connectors.copy_text import value_text
from huiju_connectors.footers import FooterRule, csv_footer
from huiju_connectors.guards import SheetLimits, UnsafeArchive, check_sheet_extent
from python_calamine import CalamineWorkbook

_CHUNK = 1 << 20


class FileFormatError(ValueError):
    """A file cannot be read as declared; the message names the file and, where known, the row."""


@dataclass(frozen=True)
class FileDigest:
    """What the platform records about a received file before reading it."""

    sha256: str
    bytes: int


def digest_file(path: Path) -> FileDigest:
    """sha256 and size of a file, read in chunks so memory stays flat."""
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return FileDigest(sha.hexdigest(), size)


def detect_encoding(path: Path, declared: str = "auto") -> str:
    """The text encoding of a CSV file: ``utf-8-sig`` or ``gb18030``.

    UTF-8 is tried first over the whole file because UTF-8 bytes often decode
    "successfully" as GB18030 into garbage, while GBK text is almost never valid UTF-8 (the
    check fails within the first Chinese characters). GB18030 is then only sampled: the
    whole file is validated again where it is read (PostgreSQL's ``COPY … ENCODING`` or
    Python's decoder), so a bad byte further on is still reported with its row.
    """
    if declared != "auto":
        return "utf-8-sig" if declared == "utf-8" else declared
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        return "utf-8-sig"
    except UnicodeDecodeError:
        pass
    with path.open("rb") as handle:
        sample = handle.read(_CHUNK)
    try:
        codecs.getincrementaldecoder("gb18030")().decode(sample)  # not final: the sample may end mid-character
    except UnicodeDecodeError:
        raise FileFormatError(f"{path.name}: the file is neither UTF-8 nor GBK/GB18030 text; "
                              "export it as UTF-8 CSV") from None
    return "gb18030"


def normalise_header(text: object) -> str:
    """A column header as compared with the configuration: NFKC (full-width → half-width), no spaces."""
    return "".join(unicodedata.normalize("NFKC", str(text or "")).split())


@dataclass(frozen=True)
class CsvLayout:
    """Where the data of a CSV file starts (and ends, when a footer follows it) and what its header says."""

    encoding: str
    header: list[str]
    data_offset: int  # byte offset of the first data record
    first_data_row: int  # the row number the department sees for the first data record
    data_end: int | None = None  # byte offset of the footer (填表人, 备注 … below the data), if there is one
    footer: tuple[list[str], ...] = ()  # the footer's lines, as cells


def read_csv_layout(path: Path, *, encoding: str, header_row: int, delimiter: str,
                    footer: FooterRule | None = None) -> CsvLayout:
    """Find the header (row ``header_row``; rows above it are titles), the data's byte offset and,
    with a ``footer`` rule, where a template's footer starts (:func:`huiju_connectors.footers.csv_footer`).

    Title and header rows are read as physical lines: templates do not put line breaks there.
    """
    with path.open("rb") as handle:
        if encoding == "utf-8-sig" and handle.read(3) != codecs.BOM_UTF8:
            handle.seek(0)
        line = b""
        for _ in range(header_row):
            line = handle.readline()
            if not line:
                raise FileFormatError(f"{path.name}: the file ends before header row {header_row}")
        offset = handle.tell()
    text = line.decode(encoding.replace("-sig", ""))
    try:
        header = next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error as exc:  # a cell past the csv module's field limit, a stray NUL
        raise FileFormatError(f"{path.name}: header row {header_row} cannot be read as CSV ({exc})") from None
    if not any(cell.strip() for cell in header):
        raise FileFormatError(f"{path.name}: row {header_row} should hold the column headers but is empty")
    found = None if footer is None else csv_footer(path, data_offset=offset, encoding=encoding, delimiter=delimiter,
                                                    rule=footer)
    return CsvLayout(encoding=encoding, header=header, data_offset=offset, first_data_row=header_row + 1,
                     data_end=found[0] if found else None, footer=tuple(found[1]) if found else ())


class _Bounded(io.RawIOBase):
    """A file read up to a byte offset (the data of a CSV file whose footer is left out)."""

    def __init__(self, handle: IO[bytes], end: int) -> None:
        self.handle = handle
        self.left = end - handle.tell()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            return 0
        data = self.handle.read(min(len(buffer), self.left))
        buffer[: len(data)] = data
        self.left -= len(data)
        return len(data)

    def close(self) -> None:
        self.handle.close()
        super().close()


def open_csv_data(path: Path, layout: CsvLayout) -> IO[bytes]:
    """The file opened in binary at its first data record (ending before its footer, if it has one)."""
    handle = path.open("rb")
    handle.seek(layout.data_offset)
    if layout.data_end is None:
        return handle
    return io.BufferedReader(_Bounded(handle, layout.data_end), _CHUNK)


def iter_csv_records(path: Path, layout: CsvLayout, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """``(row_no, cells)`` for every data record, row numbers as the department sees them."""
    with open_csv_data(path, layout) as raw:
        text = io.TextIOWrapper(raw, encoding=layout.encoding.replace("-sig", ""), newline="")
        yield from enumerate(csv.reader(text, delimiter=delimiter), start=layout.first_data_row)


def excel_cell_text(value: Any) -> str | None:
    """A spreadsheet cell as the text a person sees, so raw keeps what was received.

    Integral floats lose their ``.0``; numbers of 15+ digits are shown as Excel does
    (``1.10101199003071E+17``): an ID number typed as a number has lost its last digits
    and must be recognised as mangled, not silently repaired.
    """
    if value.__class__ is str:  # most cells are text: checked first, the isinstance chain below costs them 2-5x more
        return value or None
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if abs(value) >= 1e15:
            mantissa, exponent = f"{value:.14E}".split("E")
            return f"{mantissa.rstrip('0').rstrip('.')}E+{int(exponent)}"
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ") if value.time() != dt.time(0) else value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time | dt.timedelta):
        return str(value)
    return str(value)


@dataclass(frozen=True)
class CellError:
    """A spreadsheet cell holding an error value instead of data (``#N/A``, ``#DIV/0!`` …)."""

    row_no: int
    column: int  # 0-based, as the row's cells are numbered
    cell: str  # where a person finds it: ``数据!C12``
    code: str  # the error value as the spreadsheet shows it


@dataclass(frozen=True)
class SheetData:
    """An xlsx sheet: its header and an iterator over its data rows.

    ``errors``: the sheet's error cells by row (their text in ``rows`` is the error value, as a
    person sees it, never an empty cell); ``error_only_rows``: filled as ``rows`` is read, the
    rows holding nothing but error values (a formula filled down past the data), which are not
    yielded.
    """

    header: list[str]
    rows: Iterator[tuple[int, list[str | None]]]  # (row_no, cells as text)
    errors: dict[int, list[CellError]] = field(default_factory=dict)
    error_only_rows: list[int] = field(default_factory=list)


def _column_index(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - 64
    return number - 1


def _sheet_parts(path: Path) -> dict[str, str]:
    """Each sheet's name → its part in the package (``xl/worksheets/sheet1.xml``), from the workbook's relations."""
    namespace_r = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    with zipfile.ZipFile(path) as archive:
        workbook = fromstring(archive.read("xl/workbook.xml")[:_CHUNK * 4], forbid_dtd=True)
        relations = fromstring(archive.read("xl/_rels/workbook.xml.rels")[:_CHUNK * 4], forbid_dtd=True)
    targets = {rel.get("Id"): rel.get("Target", "") for rel in relations}
    parts = {}
    for sheet in workbook.iter():
        if _local(sheet.tag) == "sheet" and sheet.get(namespace_r) in targets:
            target = targets[sheet.get(namespace_r)].lstrip("/")
            parts[sheet.get("name", "")] = target if target.startswith("xl/") else "xl/" + target
    return parts


def _error_cells(path: Path, sheet: str, found: dict[str, dict[str, str]],
                 first_column: int) -> dict[int, list[CellError]]:
    """The error cells of ``sheet`` by row, from what the extent check found per part."""
    if not found:
        return {}
    try:
        cells = found.get(_sheet_parts(path).get(sheet, ""), {})
    except (KeyError, zipfile.BadZipFile, ParseError, DefusedXmlException):
        cells = {}
    errors: dict[int, list[CellError]] = {}
    for ref, code in cells.items():
        match = re.fullmatch(r"([A-Z]+)([0-9]+)", ref)
        if match is None:
            continue
        row_no = int(match.group(2))
        errors.setdefault(row_no, []).append(
            CellError(row_no, _column_index(match.group(1)) - first_column, f"{sheet}!{ref}", code))
    return errors


def read_xlsx(path: Path, *, header_row: int, sheet: str | None = None,
              limits: SheetLimits | None = None) -> SheetData:
    """Open a workbook with python-calamine (about 10x faster than openpyxl) and stream a sheet.

    Rows that are entirely empty are skipped; row numbers stay those of the sheet. A workbook
    whose sheets span more than ``limits`` (declared or used range) is refused before calamine
    allocates the range (:func:`huiju_connectors.guards.check_sheet_extent`).
    """
    try:
        error_parts = check_sheet_extent(path, limits=limits or SheetLimits())
    except UnsafeArchive as exc:
        raise FileFormatError(str(exc)) from None
    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for every kind of broken file
        raise FileFormatError(f"{path.name}: not a readable Excel workbook ({exc})") from None
    names = workbook.sheet_names
    if sheet is not None and sheet not in names:
        raise FileFormatError(f"{path.name}: no sheet named {sheet!r} (sheets: {', '.join(names)})")
    try:
        worksheet = workbook.get_sheet_by_name(sheet or names[0])
    except Exception as exc:  # calamine's own error types: broken or hostile sheet XML (a DTD, an entity)
        raise FileFormatError(f"{path.name}: sheet {sheet or names[0]!r} is not readable ({exc})") from None
    rows = worksheet.iter_rows()
    # iter_rows starts at the first used row and column, not at A1: keep the sheet's own numbering.
    first_row = (worksheet.start or (0, 0))[0] + 1
    errors = _error_cells(path, sheet or names[0], error_parts, (worksheet.start or (0, 0))[1])
    row_no = first_row - 1
    header: list[str] | None = None
    for cells in rows:
        row_no += 1
        if row_no == header_row:
            header = [excel_cell_text(cell) or "" for cell in cells]
            break
    if header is None or not any(header):
        raise FileFormatError(f"{path.name}: row {header_row} should hold the column headers but is empty")

    error_only: list[int] = []

    def data() -> Iterator[tuple[int, list[str | None]]]:
        number = row_no
        for cells in rows:
            number += 1
            texts = list(map(excel_cell_text, cells))
            if number in errors:
                if not any(text is not None and text.strip() for text in texts):
                    error_only.append(number)
                    continue
                for error in errors[number]:
                    if 0 <= error.column < len(texts):
                        texts[error.column] = error.code
            if any(text is not None and text.strip() for text in texts):
                yield number, texts

    return SheetData(header=header, rows=data(), errors=errors, error_only_rows=error_only)


def workbook_epoch(path: Path) -> dt.date:
    """The date a workbook's serial 0 stands for: 1899-12-30, or 1904-01-01 for the 1904 date system (old Mac Excel)."""
    with zipfile.ZipFile(path) as archive:
        head = archive.read("xl/workbook.xml")[:4096]
    return dt.date(1904, 1, 1) if re.search(rb'date1904="(1|true)"', head) else dt.date(1899, 12, 30)


# --------------------------------------------------------------------------------------------- JSON

# Numbers keep the text they were sent as ("12.50" stays "12.50", an 18-digit ID number sent as a
# number is not rounded through a float): raw keeps what was received.
_JSON = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=lambda name: name)


class _JsonStream:
    """Incremental reading of one JSON document: values are decoded one at a time from a buffer
    refilled in 1 MiB pieces, so a large array of records never sits in memory as a whole."""

    def __init__(self, handle: IO[str], name: str) -> None:
        self.handle = handle
        self.name = name
        self.buffer = ""
        self.pos = 0
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.handle.read(_CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buffer = self.buffer[self.pos:] + chunk
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-blank character ("" at the end of the file)."""
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self._fill():
                return ""

    def expect(self, char: str) -> None:
        """Consume ``char`` (after blanks) or fail naming what was found."""
        found = self.peek()
        if found != char:
            raise FileFormatError(f"{self.name}: not valid JSON: expected {char!r} but found {found or 'the end'!r}")
        self.pos += 1

    def value(self) -> object:
        """The next complete JSON value."""
        self.peek()
        while True:
            try:
                value, end = _JSON.raw_decode(self.buffer, self.pos)
            except RecursionError:
                raise FileFormatError(f"{self.name}: not valid JSON for the platform: arrays or objects nested "
                                      "thousands of levels deep") from None
            except json.JSONDecodeError as exc:
                if self._fill():
                    continue
                raise FileFormatError(f"{self.name}: not valid JSON ({exc.msg} at character {exc.pos})") from None
            # A number or literal cut by the end of the buffer ("3." decodes as 3) may continue in
            # the next piece: read on unless a delimiter shows that it ended.
            tail = self.buffer[end:]
            if (self.buffer[end - 1] not in '}]"' and len(tail) < 64 and not any(c in ',:]} \t\r\n' for c in tail)
                    and self._fill()):
                continue
            self.pos = end
            return value


def _json_records(path: Path, records_key: str | None) -> Iterator[tuple[int, object]]:
    """``(row_no, record)``: array items numbered from 1, or JSON Lines numbered by line."""
    with path.open("r", encoding="utf-8-sig") as handle:
        stream = _JsonStream(handle, path.name)
        first = stream.peek()
        if first == "":
            return
        if first == "{" and records_key is None:
            # JSON Lines: one object per line (blank lines allowed).
            handle.seek(0)
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield line_no, _JSON.decode(line.lstrip("\ufeff"))
                except json.JSONDecodeError as exc:
                    raise FileFormatError(
                        f"{path.name}: line {line_no} is not a JSON object ({exc.msg}); expected an array of "
                        "objects, one object per line, or (with records_key configured) an object holding the array"
                    ) from None
            return
        if first == "{":
            stream.expect("{")
            while stream.peek() != "}":
                key = stream.value()
                stream.expect(":")
                if key == records_key:
                    yield from _json_array(stream, path.name)
                    return
                stream.value()  # metadata next to the records (counts, dates): skipped
                if stream.peek() == ",":
                    stream.pos += 1
            raise FileFormatError(f"{path.name}: the JSON object has no key {records_key!r} holding the records")
        yield from _json_array(stream, path.name)


def _json_array(stream: _JsonStream, name: str) -> Iterator[tuple[int, object]]:
    stream.expect("[")
    number = 0
    while stream.peek() != "]":
        if stream.peek() == "":
            raise FileFormatError(f"{name}: not valid JSON: the array of records is not closed")
        number += 1
        yield number, stream.value()
        if stream.peek() == ",":
            stream.pos += 1


def read_json(path: Path, *, records_key: str | None = None) -> SheetData:
    """Stream a JSON file of records as a sheet: an array of objects, an object holding the array
    under ``records_key``, or JSON Lines (one object per line).

    The header is every key that occurs, in order of first appearance (a first pass over the
    file); each row holds the values in that order, nested values as JSON text.
    """
    header: dict[str, None] = {}
    for row_no, record in _json_records(path, records_key):
        if not isinstance(record, dict):
            raise FileFormatError(f"{path.name}: record {row_no} is not a JSON object but {type(record).__name__}")
        header.update(dict.fromkeys(record))
    if not header:
        raise FileFormatError(f"{path.name}: the JSON file holds no records")
    for name in header:  # a value can be quarantined with its record; a column name is the file's
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise FileFormatError(f"{path.name}: the field name {name!r} holds an unpaired surrogate escape, "
                                  "which no text column can store") from None
    names = list(header)

    def rows() -> Iterator[tuple[int, list[str | None]]]:
        for row_no, record in _json_records(path, records_key):
            assert isinstance(record, dict)
            yield row_no, [value_text(record.get(name)) for name in names]

    return SheetData(header=names, rows=rows())


# --------------------------------------------------------------------------------------------- XML

_XML_DECLARATION = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
# Encodings expat cannot read itself (it only knows UTF-8/16, Latin-1, ASCII) but departments use.
_TRANSCODED = {"gb2312": "gb18030", "gbk": "gb18030", "gb18030": "gb18030", "cp936": "gb18030"}


class _Utf8Transcoder(io.RawIOBase):
    """A GBK/GB18030 XML file read as UTF-8, with its declaration rewritten to say so."""

    def __init__(self, handle: IO[bytes], encoding: str) -> None:
        self.handle = handle
        self.decoder = codecs.getincrementaldecoder(encoding)()
        self.pending = b""
        self.first = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            raw = self.handle.read(_CHUNK)
            text = self.decoder.decode(raw, final=not raw)
            if self.first:
                text = re.sub(r"""encoding\s*=\s*["'][^"']*["']""", 'encoding="utf-8"', text, count=1)
                self.first = False
            self.pending = text.encode("utf-8")
            if not raw:
                break
        count = min(len(buffer), len(self.pending))
        buffer[:count] = self.pending[:count]
        self.pending = self.pending[count:]
        return count


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def _xml_records(path: Path, record_element: str) -> Iterator[tuple[int, dict[str, str | None]]]:
    """``(ordinal, fields)`` for every ``record_element`` (local name, any depth), streamed.

    Parsed with defusedxml: a DTD, entity declarations and external references are refused
    (billion laughs, XXE). Finished elements are dropped from the tree as the parse goes on, so
    memory stays flat however long the file. A record's fields are its attributes and child
    elements (child text; a child with children of its own as JSON).
    """
    with path.open("rb") as raw:
        declared = _XML_DECLARATION.match(raw.read(512))
        raw.seek(0)
        encoding = declared.group(1).decode().lower() if declared else "utf-8"
        source: IO[bytes] = raw
        if encoding in _TRANSCODED:
            source = io.BufferedReader(_Utf8Transcoder(raw, _TRANSCODED[encoding]), _CHUNK)
        stack: list[Any] = []
        inside = 0  # how many record elements enclose the current position
        number = 0
        try:
            for event, element in iterparse(source, events=("start", "end"), forbid_dtd=True):
                is_record = _local(element.tag) == record_element
                if event == "start":
                    stack.append(element)
                    inside += is_record
                    continue
                stack.pop()
                inside -= is_record
                if is_record and not inside:
                    number += 1
                    yield number, _xml_fields(element)
                if not inside and stack:
                    stack[-1].remove(element)  # done with it: keep the tree from growing
        except DefusedXmlException as exc:
            raise FileFormatError(f"{path.name}: XML refused: it declares a DTD, entities or external "
                                  f"references, which the platform does not accept ({type(exc).__name__})") from None
        except ParseError as exc:
            line, column = exc.position
            raise FileFormatError(f"{path.name}: not well-formed XML at line {line}, column {column}") from None
        except UnicodeDecodeError as exc:
            raise FileFormatError(f"{path.name}: the XML text is not valid {encoding} ({exc.reason})") from None


def _xml_fields(element: Any) -> dict[str, str | None]:
    fields: dict[str, str | None] = {_local(k): v for k, v in element.attrib.items()}
    for name, value in _xml_children(element).items():
        fields[name] = value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return fields


def _xml_children(element: Any) -> dict[str, object]:
    """Child name → text, or nested dict; a name that repeats keeps every value, as a list (nothing is lost)."""
    children: dict[str, object] = {}
    for child in element:
        name = _local(child.tag)
        value = _xml_children(child) if len(child) else ((child.text or "").strip() or None)
        if name not in children:
            children[name] = value
        elif isinstance(children[name], _Repeated):
            children[name].append(value)  # type: ignore[union-attr]
        else:
            children[name] = _Repeated([children[name], value])
    return children


class _Repeated(list):  # type: ignore[type-arg]
    """The values of an element name that occurs more than once in one parent."""


def read_xml(path: Path, *, record_element: str) -> SheetData:
    """Stream an XML file of records as a sheet: every ``record_element`` is one row.

    The header is every field name that occurs, in order of first appearance (a first pass).
    """
    header: dict[str, None] = {}
    for _, fields in _xml_records(path, record_element):
        header.update(dict.fromkeys(fields))
    if not header:
        raise FileFormatError(f"{path.name}: no <{record_element}> records found in the XML file")
    names = list(header)

    def rows() -> Iterator[tuple[int, list[str | None]]]:
        for row_no, fields in _xml_records(path, record_element):
            yield row_no, [fields.get(name) for name in names]

    return SheetData(header=names, rows=rows())
