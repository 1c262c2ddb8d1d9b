"""Portal benchmark: `portal_upload_2k`, a filled-in template uploaded through the portal, against the core alone.

"The result within seconds for a normal file": the department's wait is the whole request —
multipart upload, the checks at the door (content, template header), landing, validation
with Great Expectations, the feedback workbook — measured through the real route (FastAPI's
test client, logged in). The anchor is the core doing the same landing, validation and
feedback on the same rows directly. Both run warm (Great Expectations imported first, as the
portal does at start-up), each in a process of its own.
"""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import openpyxl
import psycopg
from huiju_demo.bulk import penalty_row

from bench.harness import Entry, rows_entry, run_isolated
from huiju.registry import load_registry

ROWS = 2_000
SOURCE = "sthjj_penalty"


def _template(path: Path, tag: str) -> Path:
    """The source's own template with ROWS penalties typed in, 1% of them with a wrong check digit."""
    from huiju_portal.workbook import template_workbook

    registry = load_registry()
    source = registry.source(SOURCE)
    workbook = openpyxl.load_workbook(io.BytesIO(template_workbook(registry, source)))
    sheet = workbook.worksheets[0]
    headers = list(source.columns)
    for index in range(ROWS):
        values = penalty_row(source, index, tag)
        if index % 100 == 7:
            values["统一社会信用代码"] = values["统一社会信用代码"][:-1] + "0"
        sheet.append([values[h] or None for h in headers])
    workbook.save(path)
    return path


def _through_portal(url: str, path: str, out: str) -> None:
    """Child process: log in and upload the file through the portal's page; time the upload request."""
    from fastapi.testclient import TestClient

    from huiju_portal.accounts import create_account
    from huiju_portal.app import create_app, warm_up
    from huiju_portal.roles import Role

    warm_up()  # as the portal is, after start-up
    registry = load_registry()
    with psycopg.connect(url, autocommit=True) as conn:
        create_account(conn, registry, username="bench_submitter", display_name="bench", department="sthjj",
                       roles={Role.SUBMITTER}, password="Bench-Portal-2026", must_change_password=False)
    with TestClient(create_app(registry=registry, warehouse_url=url)) as client:
        token = re.search(r'name="login_token" value="([^"]+)"', client.get("/login").text).group(1)
        client.post("/login", data={"username": "bench_submitter", "password": "Bench-Portal-2026",
                                    "login_token": token, "next": "/"})
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get(f"/submit/{SOURCE}/upload").text).group(1)
        content = Path(path).read_bytes()
        started = time.perf_counter()
        page = client.post(f"/submit/{SOURCE}/upload", data={"csrf_token": csrf},
                           files={"file": (Path(path).name, content)})
        seconds = time.perf_counter() - started
    assert page.status_code == 200 and "校验通过" in page.text, page.text[-2000:]
    Path(out).write_text(json.dumps({"seconds": seconds}))


def _core_alone(url: str, path: str, out: str) -> None:
    """Child process: land, validate and feed back the same rows with the core's functions directly."""
    from huiju.feedback import build_feedback
    from huiju.landing import land_file
    from huiju.validation import validate_load
    from huiju_portal.app import warm_up

    warm_up()  # like the portal
    registry = load_registry()
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        result = land_file(conn, registry, registry.source(SOURCE), Path(path))
        verdict = validate_load(conn, registry, result.load_id)
        build_feedback(conn, registry, result.load_id)
        seconds = time.perf_counter() - started
    assert verdict.status == "validated", verdict
    Path(out).write_text(json.dumps({"seconds": seconds}))


def portal_upload_2k(url: str, work: Path) -> Entry:
    """A 2,000-row template through the portal's upload page vs the core's landing + validation + feedback."""
    # The anchor runs before and after (mean): the store of Great Expectations' results grows with
    # every validated batch, so whichever ran second would be charged for the first.
    runs = [("_core_alone", "PA"), ("_through_portal", "PB"), ("_core_alone", "PC")]
    seconds: dict[str, list[float]] = {}
    peak = 0.0
    for index, (function, tag) in enumerate(runs):
        path = _template(work / f"十一月处罚_{index}.xlsx", tag)
        out = work / f"{function}_{index}.json"
        used = run_isolated("bench.portal", function, url, str(path), str(out))
        peak = max(peak, used) if function == "_through_portal" else peak
        seconds.setdefault(function, []).append(json.loads(out.read_text())["seconds"])
    anchor = sum(seconds["_core_alone"]) / len(seconds["_core_alone"])
    return rows_entry("portal_upload_2k", ROWS, seconds["_through_portal"][0],
                      "the core's land_file + validate_load + build_feedback on the same rows (mean of a run "
                      "before and after)", anchor, peak, target_ratio=0.7,
                      note="the whole upload request a department waits for (multipart, door checks, landing, "
                           "validation with GX, feedback workbook), warm")


BENCHMARKS = {"portal_upload_2k": portal_upload_2k}
