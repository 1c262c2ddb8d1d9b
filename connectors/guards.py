"""Checks on a received file's content before any parser sees it.

Departments' files are untrusted: an ``.xlsx`` may be an HTML table saved by a web system, a
macro-enabled workbook, a legacy OLE2 ``.xls``, or a zip bomb. :func:`sniff_kind` decides by
content, never by extension. :func:`check_archive` rejects absurd zips from the central
directory alone (milliseconds, nothing decompressed); because declared sizes can lie,
:func:`open_member`, :func:`safe_extract` and :func:`open_gzip` enforce the same limits while
streaming. Every rejection raises :class:`UnsafeArchive` with a message naming the file.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import shutil
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

__all__ = [
    "DEFAULT_LIMITS",
    "ArchiveLimits",
    "FileKind",
    "SheetLimits",
    "UnsafeArchive",
    "check_archive",
    "check_gzip",
    "check_sheet_extent",
    "open_gzip",
    "open_member",
    "safe_extract",
    "sniff_kind",
]

log = logging.getLogger(__name__)

FileKind = Literal["xlsx", "xlsm", "xls_legacy", "zip", "gzip", "csv_or_text", "json", "xml", "html", "unknown"]

_OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_GZIP_MAGIC = b"\x1f\x8b"
_SNIFF_BYTES = 8192
_CHUNK = 1 << 20
# Only the first part of [Content_Types].xml is read when sniffing: it is small in real files.
_CONTENT_TYPES_CAP = 1 << 20


class UnsafeArchive(ValueError):
    """An archive (zip, xlsx, gzip) the platform refuses to open; the message names the file."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits for compressed files.

    ``max_ratio`` applies to members (and the whole archive) of at least
    ``ratio_floor`` uncompressed bytes: tiny, highly repetitive members (an xlsx's styles) can
    legitimately exceed any sensible ratio while being harmless.
    """

    max_total_uncompressed: int = 2 * 1024**3
    max_ratio: float = 200.0
    max_members: int = 10_000
    ratio_floor: int = 1 * 1024**2


DEFAULT_LIMITS = ArchiveLimits()


# --------------------------------------------------------------------------------------------- sniffing


def sniff_kind(path: str | Path) -> FileKind:
    """What ``path`` really is, from its content.

    Zip containers are told apart by their entries: ``xlsm`` when ``[Content_Types].xml``
    mentions ``macroEnabled`` or a ``vbaProject.bin`` entry exists, ``xlsx`` for other
    spreadsheetml packages, ``zip`` otherwise. OLE2 (``D0CF11E0``) is a legacy ``.xls``. Text is
    classified by its first non-blank characters (``<html``/``<!doctype html`` → ``html``,
    ``<?xml``/``<`` → ``xml``, ``{``/``[`` → ``json``), otherwise ``csv_or_text`` when it decodes
    as UTF-8/UTF-16/GB18030 without NUL bytes. An empty file is ``csv_or_text`` (no rows).
    """
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if not head:
        return "csv_or_text"
    if head.startswith(_OLE2_MAGIC):
        return "xls_legacy"
    if head.startswith(_ZIP_MAGICS):
        return _sniff_zip(path)
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    text = _decode_head(head)
    if text is None:
        return "unknown"
    return _sniff_text(text)


def _sniff_zip(path: Path) -> FileKind:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            lower = {n.lower() for n in names}
            if any(n.endswith("vbaproject.bin") for n in lower):
                return "xlsm"
            if "[content_types].xml" in lower:
                entry = next(n for n in names if n.lower() == "[content_types].xml")
                with zf.open(entry) as fh:
                    content_types = fh.read(_CONTENT_TYPES_CAP)
                if b"macroenabled" in content_types.lower():
                    return "xlsm"
                if b"spreadsheetml" in content_types.lower() or "xl/workbook.xml" in lower:
                    return "xlsx"
            elif "xl/workbook.xml" in lower:
                return "xlsx"
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError):
        return "unknown"  # looks like a zip but its directory is broken: no parser should try
    return "zip"


def _decode_head(head: bytes) -> str | None:
    """The start of a text file as str, or None if it is not text in a known encoding."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom) :].decode(codec, errors="ignore")
    if b"\x00" in head:
        return None
    for codec in ("utf-8", "gb18030"):
        try:
            # The read may have cut a multi-byte character: drop up to 3 trailing bytes.
            for cut in range(4):
                try:
                    return head[: len(head) - cut].decode(codec)
                except UnicodeDecodeError:
                    if cut == 3:
                        raise
        except UnicodeDecodeError:
            continue
    return None


def _sniff_text(text: str) -> FileKind:
    start = text.lstrip().lower()
    if start.startswith(("<!doctype html", "<html", "<head", "<body", "<table", "<meta")):
        return "html"
    if start.startswith("<?xml"):
        # XHTML and Excel's "save as web page" start with an XML prolog too.
        return "html" if "<html" in start[:2048] else "xml"
    if start.startswith("<!doctype"):
        return "html" if "html" in start[:64] else "xml"
    if start.startswith("<"):
        return "xml"
    if start.startswith("{") or (start.startswith("[") and start[1:].lstrip()[:1] in ('{', '[', '"', "]")):
        return "json"
    if any(ch in text for ch in "\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17"):
        return "unknown"  # binary data that happens to decode
    return "csv_or_text"


# --------------------------------------------------------------------------------------------- zip


def check_archive(
    path: str | Path,
    *,
    limits: ArchiveLimits = DEFAULT_LIMITS,
) -> list[zipfile.ZipInfo]:
    """Reject a zip (xlsx, xlsm, plain zip) whose central directory is absurd; return its entries.

    Reads only the central directory (no decompression): member count, declared total
    uncompressed size, and per-member / overall compression ratio. Encrypted members are refused
    too (the platform cannot inspect them). Raises :class:`UnsafeArchive`.
    """
    path = Path(path)
    lim = limits
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UnsafeArchive(f"{path.name}: not a readable zip archive ({exc})") from None
    if len(infos) > lim.max_members:
        raise UnsafeArchive(f"{path.name}: {len(infos)} entries, more than the limit of {lim.max_members}")
    total = 0
    total_compressed = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise UnsafeArchive(f"{path.name}: member {info.filename!r} is encrypted")
        total += info.file_size
        total_compressed += info.compress_size
        if total > lim.max_total_uncompressed:
            raise UnsafeArchive(
                f"{path.name}: declares more than {lim.max_total_uncompressed} bytes uncompressed"
            )
        _check_ratio(path, info.filename, info.file_size, info.compress_size, lim)
    _check_ratio(path, "(whole archive)", total, total_compressed, lim)
    return infos


def _check_ratio(path: Path, member: str, size: int, compressed: int, lim: ArchiveLimits) -> None:
    if size >= lim.ratio_floor and size > lim.max_ratio * max(compressed, 1):
        raise UnsafeArchive(
            f"{path.name}: member {member!r} expands {size / max(compressed, 1):.0f}x "
            f"({compressed} → {size} bytes), more than the limit of {lim.max_ratio:.0f}x"
        )


class _CappedReader(io.RawIOBase):
    """A read-only stream that raises :class:`UnsafeArchive` past ``cap`` bytes or past ``max_ratio``.

    The ratio is checked against compressed bytes consumed so far (``consumed()``), once at
    least ``ratio_floor`` bytes were produced.
    """

    def __init__(self, inner: IO[bytes], *, label: str, cap: int, lim: ArchiveLimits, consumed: object) -> None:
        super().__init__()
        self._inner = inner
        self._label = label
        self._cap = cap
        self._lim = lim
        self._consumed = consumed  # callable returning compressed bytes read so far, or None
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.produced += n
        if self.produced > self._cap:
            raise UnsafeArchive(f"{self._label}: expands beyond the limit of {self._cap} bytes")
        if callable(self._consumed) and self.produced >= self._lim.ratio_floor:
            compressed = max(int(self._consumed()), 1)
            if self.produced > self._lim.max_ratio * compressed:
                raise UnsafeArchive(
                    f"{self._label}: expands more than {self._lim.max_ratio:.0f}x while decompressing"
                )
        return n

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


@contextmanager
def open_member(path: str | Path, member: str, *, limits: ArchiveLimits = DEFAULT_LIMITS) -> Iterator[IO[bytes]]:
    """Open one zip member for streaming, enforcing the limits on the bytes actually produced."""
    path = Path(path)
    infos = check_archive(path, limits=limits)
    info = next((i for i in infos if i.filename == member), None)
    if info is None:
        raise UnsafeArchive(f"{path.name}: no member named {member!r}")
    with zipfile.ZipFile(path) as zf, zf.open(info) as raw:
        # A CRC error while reading means the member's declared data was not what it claimed.
        yield from _capped(raw, f"{path.name}: member {member!r}", limits, lambda: _zip_consumed(raw, info),
                           (zipfile.BadZipFile, zlib.error, EOFError), "is corrupt")


def _capped(raw: IO[bytes], label: str, lim: ArchiveLimits, consumed: Callable[[], int],
            corrupt: tuple[type[BaseException], ...], what: str) -> Iterator[IO[bytes]]:
    """``raw``'s decompressed bytes, buffered, refused once they pass the limits; ``corrupt`` errors refused too."""
    reader = _CappedReader(raw, label=label, cap=lim.max_total_uncompressed, lim=lim, consumed=consumed)
    with io.BufferedReader(reader, buffer_size=_CHUNK) as stream:
        try:
            yield stream
        except corrupt as exc:
            raise UnsafeArchive(f"{label}: {what} ({exc})") from None


def _safe_member_path(dest: Path, name: str, archive: Path) -> Path | None:
    """Where member ``name`` goes under ``dest``, or None for directories; raises on traversal."""
    if name.endswith("/"):
        return None
    parts = name.replace("\\", "/").split("/")
    if name.startswith("/") or any(p in ("..", "") for p in parts) or "\x00" in name or ":" in parts[0]:
        raise UnsafeArchive(f"{archive.name}: member {name!r} would be written outside the target directory")
    target = (dest / Path(*parts)).resolve()
    if not target.is_relative_to(dest):
        raise UnsafeArchive(f"{archive.name}: member {name!r} would be written outside the target directory")
    return target


def safe_extract(path: str | Path, dest_dir: str | Path, *, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[Path]:
    """Extract a zip into ``dest_dir`` with every limit enforced while streaming.

    Member names with ``..``, absolute paths or drive letters are refused, and so are symlink
    members. On any rejection the files already
    extracted are removed and :class:`UnsafeArchive` is raised. Returns the extracted paths.
    """
    path = Path(path)
    dest = Path(dest_dir).resolve()
    lim = limits
    infos = check_archive(path, limits=lim)
    written: list[Path] = []
    budget = lim.max_total_uncompressed
    try:
        with zipfile.ZipFile(path) as zf:
            for info in infos:
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise UnsafeArchive(f"{path.name}: member {info.filename!r} is a symbolic link")
                target = _safe_member_path(dest, info.filename, path)
                if target is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as raw, target.open("wb") as out:
                    written.append(target)
                    reader = _CappedReader(
                        raw,
                        label=f"{path.name}: member {info.filename!r}",
                        cap=budget,
                        lim=lim,
                        consumed=lambda info=info, raw=raw: _zip_consumed(raw, info),
                    )
                    shutil.copyfileobj(reader, out, _CHUNK)
                    budget -= reader.produced
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        _remove(written)
        raise UnsafeArchive(f"{path.name}: corrupt archive ({exc})") from None
    except BaseException:
        _remove(written)
        raise
    log.info("extracted %d files from %s", len(written), path.name)
    return written


def _zip_consumed(raw: IO[bytes], info: zipfile.ZipInfo) -> int:
    # ZipExtFile tracks how many compressed bytes are still unread (a private but stable field).
    left = getattr(raw, "_compress_left", None)
    return info.compress_size - left if isinstance(left, int) else info.compress_size


def _remove(paths: list[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------- gzip


def check_gzip(path: str | Path, *, max_total_uncompressed: int | None = None) -> None:
    """Cheap pre-check of a gzip file's trailer (ISIZE = uncompressed size mod 2**32).

    The trailer can lie (and wraps at 4 GiB), so this only catches honest absurdities; the real
    guard is :func:`open_gzip`'s streaming cap.
    """
    path = Path(path)
    cap = DEFAULT_LIMITS.max_total_uncompressed if max_total_uncompressed is None else max_total_uncompressed
    with path.open("rb") as fh:
        if fh.read(2) != _GZIP_MAGIC:
            raise UnsafeArchive(f"{path.name}: not a gzip file")
        fh.seek(0, io.SEEK_END)
        if fh.tell() < 18:
            raise UnsafeArchive(f"{path.name}: truncated gzip file")
        fh.seek(-4, io.SEEK_END)
        (isize,) = struct.unpack("<I", fh.read(4))
    if isize > cap:
        raise UnsafeArchive(f"{path.name}: declares {isize} bytes uncompressed, more than the limit of {cap}")


@contextmanager
def open_gzip(path: str | Path, *, limits: ArchiveLimits = DEFAULT_LIMITS) -> Iterator[IO[bytes]]:
    """Open a gzip file for streaming; raises :class:`UnsafeArchive` once the output passes the limits."""
    path = Path(path)
    check_gzip(path, max_total_uncompressed=limits.max_total_uncompressed)
    with path.open("rb") as compressed:
        yield from _capped(gzip.GzipFile(fileobj=compressed, mode="rb"), path.name, limits, compressed.tell,
                           (gzip.BadGzipFile, EOFError, zlib.error), "corrupt gzip data")


# --------------------------------------------------------------------------------------------- worksheets

#: Where calamine looks for worksheets: a sheet's path is ``xl/<folder>/…`` with one of these folders (and the
#: zip member is found whatever its case), so every such member is checked, not only ``sheet<n>.xml``.
_SHEET_MEMBER = re.compile(r"^xl/(?:worksheets|chartsheets|dialogsheets)/.", re.IGNORECASE)
#: An element name's namespace prefix (``x:`` in ``<x:c>``): readers match elements by their local name.
_PREFIX = rb"(?:[^\s<>/!?:=]+:)?"
#: The ``<dimension ref="A1:M100002"/>`` element, which sits before ``<sheetData>``.
_DIMENSION = re.compile(rb"<" + _PREFIX + rb"dimension\b[^>]*?\sref\s*=\s*[\"']([^\"']*)[\"']")
#: A cell reference (``B7``; calamine reads lower-case letters too).
_REF = re.compile(rb"([A-Za-z]*)([0-9]+)")
#: A cell tag as every common writer puts it (Excel, LibreOffice, openpyxl, XlsxWriter, POI): ``r`` first.
_WRITTEN_REF = re.compile(rb'<c r="([A-Z]{1,3})([1-9][0-9]{0,6})"')
#: Blanks, ``/`` and ``>`` after a tag name become one space, ``'`` becomes ``"``: ``<c `` then starts every
#: cell tag (``<c>``, ``<c/>``, ``<c\n r=…``), and the quick scan's needles need no regular expression.
_TAG_ENDS = bytes.maketrans(b"\t\n\r/>'", b'     "')
#: The tags that place a cell: a cell (``<c r="B7">``, or ``<c>`` at the next column), a row (``<row r="7">``,
#: or the next row) and a row's end; for the exact scan, which follows them as calamine does.
_PLACING_TAG = re.compile(rb"<(/?)" + _PREFIX + rb"(c|row)(?=[\s/>])([^>]*)>")
_ATTRIBUTE = re.compile(rb"([^\s=]+)\s*=\s*([\"'])(.*?)\2", re.DOTALL)
#: An error cell (t="e") and its value, its formula (if any) before it: <c r="C12" t="e"><f>1/0</f><v>#DIV/0!</v></c>.
_ERROR_CELL = re.compile(rb'<(?:\w+:)?c\s(?=[^>]*?\bt="e")[^>]*?\br="([A-Z]{1,3}[0-9]{1,7})"[^>]*>'
                         rb'(?:(?!</(?:\w+:)?c>).){0,4000}?<(?:\w+:)?v>([^<]{1,32})</(?:\w+:)?v>', re.DOTALL)
#: A tag cut by the end of a chunk is read with the next one; no honest worksheet tag or text node comes near
#: this (Excel caps a cell's text at 32,767 characters).
_MAX_TAG = 4 << 20


@dataclass(frozen=True)
class SheetLimits:
    """What a workbook's sheets may span: a reader allocates the rectangle between the outermost
    cells (and may trust the declared ``<dimension>``), so a tiny file claiming ``A1:XFD1048576``
    would force gigabytes. ``max_cells`` bounds the rectangle, ``max_columns`` its width."""

    max_cells: int = 20_000_000
    max_columns: int = 1_000


def check_sheet_extent(path: str | Path, *, limits: SheetLimits = SheetLimits(),
                       archive_limits: ArchiveLimits = DEFAULT_LIMITS) -> dict[str, dict[str, str]]:
    """Refuse a workbook whose declared or used range is larger than ``limits``, before any reader opens it.

    Returns, per worksheet part (``xl/worksheets/sheet1.xml``), its error cells (``t="e"``: ``#N/A``,
    ``#DIV/0!`` …) as ``{"C12": "#N/A"}``, found on the way by the quick scan: readers such as calamine
    show them as empty cells. (A sheet the quick scan cannot vouch for is read once more for them.)

    Streams each worksheet's XML (within ``archive_limits``); raises :class:`UnsafeArchive` naming
    the file, the sheet and the range. Calamine allocates the rectangle between the outermost cells,
    each placed by its ``r`` or, without one, after the previous cell; so every cell is looked at,
    in three passes of increasing cost, each only when the one before cannot vouch for the sheet:

    1. *quick* (a few byte searches per megabyte, under a tenth of calamine's own read): the
       ``<dimension>`` is within ``limits``, and every cell tag is ``<c r="…"`` with a single column
       letter up to a bound and a row of at most so many digits, bounds chosen (from the dimension
       when there is one) so that the rectangle they allow is within ``limits``;
    2. *references*: every cell tag is ``<c r="…"`` (as every common writer puts it): the exact
       outermost columns and rows from the references;
    3. *exact*: rows and cells followed as calamine places them (cells without ``r``, prefixed
       element names, other quoting); about ten times calamine's read, for workbooks no common
       writer makes.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            sheets = [info.filename for info in zf.infolist() if _SHEET_MEMBER.match(info.filename)]
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeArchive(f"{path.name}: not a readable workbook ({exc})") from None
    errors: dict[str, dict[str, str]] = {}
    for member in sheets:
        cells: dict[str, str] = {}
        if not _quick_scan(path, member, limits, archive_limits, cells):
            extent = _reference_scan(path, member, archive_limits) or _exact_scan(path, member, archive_limits)
            _refuse_beyond(path, member, *extent, limits)
            cells = _error_cells(path, member, archive_limits)  # the quick scan may have stopped part-way
        if cells:
            errors[member] = cells
    return errors


def _collect_error_cells(block: bytes, into: dict[str, str]) -> None:
    """Add the error cells of ``block`` to ``into`` (cell reference → error value); a byte search first."""
    if b't="e"' in block:  # rare: only then is the block searched for the cells
        into.update((m.group(1).decode(), m.group(2).decode("utf-8", "replace")) for m in _ERROR_CELL.finditer(block))


def _error_cells(path: Path, member: str, archive_limits: ArchiveLimits) -> dict[str, str]:
    """Every error cell of the sheet (see :func:`check_sheet_extent`)."""
    cells: dict[str, str] = {}
    tail = b""
    for block in _blocks(path, member, archive_limits):
        _collect_error_cells(tail + block, cells)
        tail = block[-4096:]  # a cell cut between two blocks is found with the next one
    return cells


def _refuse_beyond(path: Path, member: str, rows: int, columns: int, limits: SheetLimits) -> None:
    if columns > limits.max_columns or columns * rows > limits.max_cells:
        raise UnsafeArchive(
            f"{path.name}: worksheet {member.rsplit('/', 1)[-1]} spans {rows} rows × {columns} columns, more than "
            f"allowed (max_sheet_columns {limits.max_columns}, max_sheet_cells {limits.max_cells})")


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - 64
    return number


def _blocks(path: Path, member: str, archive_limits: ArchiveLimits) -> Iterator[bytes]:
    """The member's XML in pieces that end before a ``<``, so no tag is cut (within ``archive_limits``)."""
    with open_member(path, member, limits=archive_limits) as stream:
        carry = b""
        while chunk := stream.read(_CHUNK):
            block = carry + chunk
            cut = block.rfind(b"<")
            if len(block) - max(cut, 0) > _MAX_TAG:
                raise UnsafeArchive(f"{path.name}: worksheet {member.rsplit('/', 1)[-1]} holds a tag or text "
                                    f"longer than {_MAX_TAG} bytes")
            if cut > 0:
                yield block[:cut]
                block = block[cut:]
            carry = block
        if carry:
            yield carry


def _quick_scan(path: Path, member: str, limits: SheetLimits, archive_limits: ArchiveLimits,
                errors: dict[str, str]) -> bool:
    """Refuse the sheet if its ``<dimension>`` spans too much; True if every cell is within quick bounds.

    The sheet's error cells are added to ``errors`` on the way (complete only when it returns True).

    The bounds: one column letter up to ``columns`` and rows of at most ``digits`` digits, taken
    from the dimension when it is within them, else ``digits`` 6 (rows below a million) and as many
    columns as ``limits`` allow with them (20 by default).
    """
    needles: tuple[bytes, bytes, bytes] | tuple[()] | None = None
    head = tail = b""
    for block in _blocks(path, member, archive_limits):
        _collect_error_cells(tail + block, errors)
        tail = block[-4096:]  # a cell cut between two blocks is found with the next one
        if needles is None:
            head += block
            if b"sheetData" not in head and len(head) < _MAX_TAG:
                continue
            needles, block = _quick_needles(path, member, head, limits), head
        if not _within(block, needles):
            return False
    return needles is not None or _within(head, _quick_needles(path, member, head, limits))


def _within(block: bytes, needles: tuple[bytes, bytes, bytes] | tuple[()]) -> bool:
    """Whether every cell tag in ``block`` is ``<c r="…"`` within the quick bounds (see :func:`_quick_needles`)."""
    if not needles:
        return False
    table, in_bounds, too_long = needles
    tags = block.translate(table)
    return tags.count(b"<c ") == tags.count(in_bounds) and too_long not in tags and b":c " not in tags


def _quick_needles(path: Path, member: str, head: bytes,
                   limits: SheetLimits) -> tuple[bytes, bytes, bytes] | tuple[()]:
    """Refuse the sheet if the ``<dimension>`` in ``head`` spans too much; the quick scan's table and needles.

    Empty when no bound leaves a column (``limits`` too tight for a quick scan).
    """
    columns, digits = 0, 6
    data = head.find(b"sheetData")
    declared = _DIMENSION.search(head, 0, data if data >= 0 else len(head))
    corners = [_REF.fullmatch(corner) for corner in declared[1].split(b":")] if declared else []
    if corners and all(corners):
        first, last = corners[0], corners[-1]
        first_column, last_column = _column_number(first[1]), _column_number(last[1])
        first_row, last_row = int(first[2]), int(last[2])
        _refuse_beyond(path, member, abs(last_row - first_row) + 1, abs(last_column - first_column) + 1, limits)
        columns, digits = max(first_column, last_column), len(str(max(first_row, last_row)))
    columns = min(columns or 26, 26, limits.max_columns, limits.max_cells // (10**digits - 1))
    if columns < 1:
        return ()
    # Column letters up to the bound become "A", those beyond "Z", digits "9": the needles are fixed strings.
    letters = bytes(range(ord("A"), ord("Z") + 1))
    table = bytes(_TAG_ENDS).translate(
        bytes.maketrans(letters + b"0123456789", b"A" * columns + b"Z" * (26 - columns) + b"9" * 10))
    return table, b'<c r="A9', b'<c r="A' + b"9" * (digits + 1)


def _reference_scan(path: Path, member: str, archive_limits: ArchiveLimits) -> tuple[int, int] | None:
    """The sheet's (rows, columns) span from the cells' ``r``; None when some cell tag is not ``<c r="…"``."""
    columns: set[bytes] = set()
    rows: set[bytes] = set()
    for block in _blocks(path, member, archive_limits):
        refs = _WRITTEN_REF.findall(block)
        tags = block.translate(_TAG_ENDS)
        if len(refs) != tags.count(b"<c ") or b":c " in tags:
            return None
        if refs:
            letters, numbers = zip(*refs, strict=True)
            columns.update(letters)
            rows.update(numbers)
    if not rows:
        return 0, 0
    numbers = [int(row) for row in rows]
    places = [_column_number(letters) for letters in columns]
    return max(numbers) - min(numbers) + 1, max(places) - min(places) + 1


def _exact_scan(path: Path, member: str, archive_limits: ArchiveLimits) -> tuple[int, int]:
    """The sheet's (rows, columns) span, following its rows and cells as calamine places them.

    A cell with ``r`` is where it says, one without is right of the previous cell; a row with ``r``
    sets the row of the cells after it, and each row's end moves to the next row. Empty cells count
    too (calamine leaves them out), which can only make the span larger.
    """
    row, column = 1, 1
    top = left = bottom = right = 0
    for block in _blocks(path, member, archive_limits):
        for closing, name, attributes in _PLACING_TAG.findall(block):
            if closing:
                if name == b"row":
                    row, column = row + 1, 1
                continue
            refs = [value for key, _, value in _ATTRIBUTE.findall(attributes) if key == b"r"]
            ref = _REF.fullmatch(refs[-1]) if refs else None
            if name == b"row":
                if ref is not None:
                    row = int(ref[2])
                if attributes.endswith(b"/"):
                    row, column = row + 1, 1
                continue
            cell_row = row
            if ref is not None:
                column = _column_number(ref[1]) if ref[1] else column
                cell_row = int(ref[2])
            top, bottom = min(top or cell_row, cell_row), max(bottom, cell_row)
            left, right = min(left or column, column), max(right, column)
            column += 1
    return (bottom - top + 1, right - left + 1) if bottom else (0, 0)
