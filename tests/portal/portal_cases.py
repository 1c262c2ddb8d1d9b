"""Files and records the portal's tests submit: filled-in templates, workbooks that must be refused."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl

from huiju.demo.bulk import penalty_row
from huiju.registry import Registry, Source
from huiju_portal.workbook import template_workbook


def filled_template(registry: Registry, source: Source, path: Path, rows: int, *, tag: str = "P",
                    overrides: dict[int, dict[str, str]] | None = None) -> Path:
    """The source's own template (as downloaded), with ``rows`` valid penalties typed in; ``overrides`` by row index."""
    workbook = openpyxl.load_workbook(io.BytesIO(template_workbook(registry, source)))
    sheet = workbook.worksheets[0]
    headers = list(source.columns)
    for index in range(rows):
        values = penalty_row(source, index, tag)
        values.update((overrides or {}).get(index, {}))
        for column, header in enumerate(headers, start=1):
            sheet.cell(row=source.header_row + 1 + index, column=column, value=values[header] or None)
    workbook.save(path)
    return path


def records(source: Source, count: int, *, tag: str = "E") -> list[dict[str, str | None]]:
    """``count`` valid penalties as a manual entry holds them (field name → text)."""
    return [{source.columns[h]: v or None for h, v in penalty_row(source, index, tag).items()}
            for index in range(count)]


def macro_workbook(path: Path) -> Path:
    """A macro-enabled workbook (.xlsm content: a vbaProject.bin part), named .xlsx."""
    workbook = openpyxl.Workbook()
    workbook.active.append(["a"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item.filename))
        target.writestr("xl/vbaProject.bin", b"\x00" * 64)
    return path
