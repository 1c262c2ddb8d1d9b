"""Helpers shared by the FTP and SFTP channel tests: a warehouse of their own, files, hostile files, collect."""

from __future__ import annotations

import io
import os
import time
import zipfile
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from huiju_demo.generate import generate_submissions

from huiju.channels import CollectContext, ConnectionInfo, collector
from huiju.landing import LandResult
from huiju.registry import Registry, Source, load_registry

DAY = date(2026, 11, 20)
ROWS = 20


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The shipped configuration (with the demo's FTP and SFTP departments)."""
    return load_registry()


@pytest.fixture(scope="module")
def url(make_database) -> str:
    """A warehouse of the test module's own: the remote-file ledger starts empty."""
    return make_database("drop", migrated=True)


def demo_file(registry: Registry, source: Source, folder: Path, name: str, seed: int) -> Path:
    """A small demo submission of ``source`` (``seed`` makes its content unique) saved as ``folder/name``."""
    staging = folder.parent / f".staging-{seed}"
    (sub,) = generate_submissions(registry, staging, DAY, rows_per_source=ROWS, seed=seed,
                                  sources=[source.id]).submissions
    assert sub.path is not None
    target = folder / name
    os.replace(sub.path, target)
    return target


def backdate(path: Path, age: timedelta) -> None:
    """Make ``path`` look as if it was last written ``age`` ago (an upload that stopped then)."""
    stamp = time.time() - age.total_seconds()
    os.utime(path, (stamp, stamp))


def zip_bomb(path: Path) -> Path:
    """A zip whose one member expands ~1000x (8 MiB of zeros): refused from its directory alone."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.csv", b"\0" * (8 << 20))
    return path


def macro_workbook(path: Path) -> Path:
    """A macro-enabled workbook (xlsm content) saved under an .xlsx name."""
    content_types = ('<?xml version="1.0"?><Types><Override PartName="/xl/workbook.xml" ContentType='
                     '"application/vnd.ms-excel.sheet.macroEnabled.main+xml"/></Types>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", content_types)
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/vbaProject.bin", b"\x00" * 64)
    return path


def legacy_xls(path: Path) -> Path:
    """A legacy OLE2 (.xls, BIFF) file saved under an .xlsx name: recognised by its magic number."""
    path.write_bytes(bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 504 + "当事人名称".encode("utf-16-le"))
    return path


def html_workbook(path: Path) -> Path:
    """An HTML table saved with an .xlsx name (what many web systems' "export to Excel" produce)."""
    path.write_text("<html><body><table><tr><td>当事人名称</td></tr></table></body></html>", encoding="utf-8")
    return path


def zip_of(path: Path, members: dict[str, Path]) -> Path:
    """A zip archive holding ``members`` (name in the archive → file)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, member in members.items():
            zf.write(member, name)
    path.write_bytes(buf.getvalue())
    return path


def run_collect(url: str, registry: Registry, source: Source, connection: ConnectionInfo) -> list[LandResult]:
    """One collect run of ``source`` through its channel, as the Airflow task runs it."""
    with psycopg.connect(url) as conn:
        return collector(source.channel)(CollectContext(registry, source, conn, DAY, connection))


def query(url: str, sql: str, *params: object) -> list[tuple]:
    """Rows of a query on the test warehouse."""
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()

