"""Reading the files departments send: encoding detection, CSV and xlsx headers and rows.

Nothing here touches the warehouse; :mod:`huiju.landing` decides how the rows are landed.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

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
    """Where the data of a CSV file starts and what its header says."""

    encoding: str
    header: list[str]
    data_offset: int  # byte offset of the first data record
    first_data_row: int  # the row number the department sees for the first data record


def read_csv_layout(path: Path, *, encoding: str, header_row: int, delimiter: str) -> CsvLayout:
    """Find the header (row ``header_row``; rows above it are titles) and the data's byte offset.

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
    header = next(csv.reader([text], delimiter=delimiter), [])
    if not any(cell.strip() for cell in header):
        raise FileFormatError(f"{path.name}: row {header_row} should hold the column headers but is empty")
    return CsvLayout(encoding=encoding, header=header, data_offset=offset, first_data_row=header_row + 1)


def open_csv_data(path: Path, layout: CsvLayout) -> IO[bytes]:
    """The file opened in binary at its first data record."""
    handle = path.open("rb")
    handle.seek(layout.data_offset)
    return handle


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
    if value is None or value == "":
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
class SheetData:
    """An xlsx sheet: its header and an iterator over its data rows."""

    header: list[str]
    rows: Iterator[tuple[int, list[str | None]]]  # (row_no, cells as text)


def read_xlsx(path: Path, *, header_row: int, sheet: str | None = None) -> SheetData:
    """Open a workbook with python-calamine (about 10x faster than openpyxl) and stream a sheet.

    Rows that are entirely empty are skipped; row numbers stay those of the sheet.
    """
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for every kind of broken file
        raise FileFormatError(f"{path.name}: not a readable Excel workbook ({exc})") from None
    names = workbook.sheet_names
    if sheet is not None and sheet not in names:
        raise FileFormatError(f"{path.name}: no sheet named {sheet!r} (sheets: {', '.join(names)})")
    worksheet = workbook.get_sheet_by_name(sheet or names[0])
    rows = worksheet.iter_rows()
    # iter_rows starts at the first used row, not at row 1: keep the sheet's own numbering.
    first_row = (worksheet.start or (0, 0))[0] + 1
    row_no = first_row - 1
    header: list[str] | None = None
    for cells in rows:
        row_no += 1
        if row_no == header_row:
            header = [excel_cell_text(cell) or "" for cell in cells]
            break
    if header is None or not any(header):
        raise FileFormatError(f"{path.name}: row {header_row} should hold the column headers but is empty")

    def data() -> Iterator[tuple[int, list[str | None]]]:
        number = row_no
        for cells in rows:
            number += 1
            texts = [excel_cell_text(cell) for cell in cells]
            if any(text is not None and text.strip() for text in texts):
                yield number, texts

    return SheetData(header=header, rows=data())
