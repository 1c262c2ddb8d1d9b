"""Files and records the portal's tests submit: filled-in templates, workbooks that must be refused."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import openpyxl
from fastapi.testclient import TestClient
from huiju_demo.bulk import penalty_row

from huiju.registry import Registry, Source
from huiju_portal.config import PortalSettings
from huiju_portal.workbook import template_workbook

# The test client's address, trusted as a proxy so a test can act from any client address it likes.
TEST_CLIENT = "testclient"


def portal_settings(var: Path, **overrides: object) -> PortalSettings:
    """The portal's settings for a test (the test client trusted as a proxy: X-Forwarded-For picks the client)."""
    return PortalSettings(**{"state_dir": var / "portal", "trusted_proxies": (TEST_CLIENT,), **overrides})  # type: ignore[arg-type]


def login(client: TestClient, username: str, password: str, *, client_addr: str = "10.0.0.1"):
    """Log in through the login form (as a browser does: the page's token, then the form); the last response."""
    page = client.get("/login", headers={"X-Forwarded-For": client_addr})
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"username": username, "password": password, "login_token": token, "next": "/"},
                       headers={"X-Forwarded-For": client_addr})


def csrf_of(client: TestClient) -> str:
    """The session's CSRF token, read from a page as a browser would."""
    page = client.get("/account/password")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


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
