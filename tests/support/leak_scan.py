"""Scan everything the platform writes besides its data stores for citizens' ID and mobile numbers.

The numbers looked for are the ones the demo generated (:func:`collect_generated`: every ID and mobile
number in the landed ``raw`` tables and the archived originals, plus any added by the test): a hit is
one of *those* numbers, in clear, where no citizen's number belongs: a log file, an ``ops`` table,
Airflow's metadata database (XCom, rendered fields, run notes), GX results, dbt's logs,
the e-mails sent. Found also when glued to letters, spaced (``138 1234 5678``), hyphenated, or behind
``+86``. A finding names its place and the number masked (never the number itself).

The data stores are not scanned: they hold the numbers by design (:data:`DATA_STORES` under ``var/``,
and the ``raw``, ``staging`` … schemas, which are not scanned at all).
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from huiju.archive import MANIFESTS

#: What under ``var/`` holds citizens' data by design (path prefixes): originals, drops, workbooks, the
#: database, scratch space, and the demo generator's own output (its departments' files and earlier weeks,
#: its answer key).
DATA_STORES = ("archive/", "inbox/", "outbox/", "pgdata/", "work/", "demo/simulators/", "demo/portal/", "demo/history/",
               "demo/manifest-")

# Collection: an 18-character ID whose birth date is plausible (so 18-digit organisation codes are not taken
# for IDs), and an 11-digit mainland mobile, each standing alone in the data.
_ID_IN_DATA = re.compile(r"(?<![0-9])(\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx])(?![0-9])")
_MOBILE_IN_DATA = re.compile(r"(?<![0-9])(1[3-9]\d{9})(?![0-9])")
# Search: digits with single spaces or hyphens between them are joined first; then every window of a digit run.
_SEPARATOR = re.compile(r"(?<=\d)[ \-](?=\d)")
_DIGIT_RUN = re.compile(r"\d{11,}[Xx]?")


def masked(value: str) -> str:
    """A number shown in a finding: its first three and last two characters only."""
    return value[:3] + "*" * (len(value) - 5) + value[-2:]


@dataclass(frozen=True)
class Leak:
    """One generated number found in clear somewhere it must not be."""

    place: str   # e.g. "file airflow/logs/…/attempt=1.log" or "table ops.loads"
    kind: str    # "ID" or "mobile"
    number: str  # masked

    def __str__(self) -> str:
        return f"{self.place}: {self.kind} {self.number}"


@dataclass
class Needles:
    """The generated numbers to look for."""

    ids: set[str] = field(default_factory=set)
    mobiles: set[str] = field(default_factory=set)

    def collect(self, text: str) -> None:
        """Add every ID and mobile number standing in ``text`` (data: a row, an original)."""
        self.ids.update(m.upper() for m in _ID_IN_DATA.findall(text))
        self.mobiles.update(_MOBILE_IN_DATA.findall(text))

    def find(self, text: str) -> Iterator[tuple[str, str]]:
        """``(kind, number)`` of each generated number in ``text``, in clear, however it is glued or spaced."""
        joined = _SEPARATOR.sub("", text)
        for run in _DIGIT_RUN.finditer(joined):
            digits = run.group().upper()
            for start in range(len(digits) - 17):
                if digits[start:start + 18] in self.ids:
                    yield "ID", digits[start:start + 18]
            for start in range(len(digits) - 10):
                if digits[start:start + 11] in self.mobiles:
                    yield "mobile", digits[start:start + 11]

    def leaks(self, place: str, text: str) -> list[Leak]:
        """The findings in one place's text (each number once)."""
        return [Leak(place, kind, masked(number)) for kind, number in dict.fromkeys(self.find(text))]


def _text_of(path: Path) -> str:
    """A file's text as a person would read it: a workbook's cells, anything else decoded leniently."""
    data = path.read_bytes()
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(path) as archive:
                return "\n".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist()
                                 if name.endswith((".xml", ".json", ".txt", ".csv", ".html")))
        except zipfile.BadZipFile:
            pass
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def collect_generated(conn: psycopg.Connection, archive: Path | None = None) -> Needles:
    """Every ID and mobile number the platform received: the ``raw`` tables' rows and the archived originals."""
    needles = Needles()
    for table in _tables(conn, "raw"):
        # The department's columns only: the platform's own (``_load_id`` with its hex digest …) are not data.
        for (row,) in conn.execute(sql.SQL("select row_to_json(t)::text from {} t").format(
                sql.Identifier("raw", table))):
            needles.collect(" ".join(str(value) for key, value in json.loads(row).items() if not key.startswith("_")))
    if archive is not None and archive.is_dir():
        # The replay manifests (archive/loads/) describe loads, with load ids whose hex digests can hold a
        # run of digits shaped like a mobile: the platform's own words, not what departments sent.
        manifests = archive / MANIFESTS
        for path in archive.rglob("*"):
            if path.is_file() and not path.is_relative_to(manifests):
                needles.collect(_text_of(path))
    return needles


def _tables(conn: psycopg.Connection, schema: str) -> list[str]:
    return [name for (name,) in conn.execute(
        "select table_name from information_schema.tables where table_schema = %s and table_type = 'BASE TABLE'"
        " order by table_name", (schema,))]


def scan_files(needles: Needles, var: Path, *, skip: Iterable[str] = DATA_STORES) -> list[Leak]:
    """Findings in every file under ``var`` except the data stores (``skip``: path prefixes relative to ``var``)."""
    prefixes = tuple(skip)
    found = []
    for path in sorted(var.rglob("*")):
        relative = path.relative_to(var).as_posix()
        if path.is_file() and not path.is_symlink() and not relative.startswith(prefixes):
            found += needles.leaks(f"file {relative}", _text_of(path))
    return found


def scan_schema(needles: Needles, conn: psycopg.Connection, schema: str = "ops") -> list[Leak]:
    """Findings in every row of every table of ``schema`` (each row as JSON text)."""
    found = []
    for table in _tables(conn, schema):
        rows = conn.execute(sql.SQL("select row_to_json(t)::text from {} t").format(sql.Identifier(schema, table)))
        found += needles.leaks(f"table {schema}.{table}", "\n".join(row for (row,) in rows))
    return found


def scan_database(needles: Needles, conn: psycopg.Connection) -> list[Leak]:
    """Findings in every table of every schema of a database but PostgreSQL's own (Airflow's metadata: XCom …)."""
    schemas = [name for (name,) in conn.execute(
        "select schema_name from information_schema.schemata where schema_name not like 'pg\\_%'"
        " and schema_name <> 'information_schema'")]
    return [leak for schema in schemas for leak in scan_schema(needles, conn, schema)]


def group(leaks: Iterable[Leak]) -> dict[str, list[Leak]]:
    """Findings by place."""
    grouped: dict[str, list[Leak]] = {}
    for leak in leaks:
        grouped.setdefault(leak.place, []).append(leak)
    return grouped
