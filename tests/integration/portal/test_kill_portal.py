"""The portal's server killed with SIGKILL mid-upload: nothing half-stored; killed after landing: the DAG finishes it.

A batch, its ledger row and the record of who uploaded it commit together, so a server killed
while the rows are being copied leaves none of them, and the same upload afterwards lands
exactly once. Killed between landing and validation, the batch waits as ``received`` (its
submitter recorded) and the source's ingest DAG steps validate it and write its feedback.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from huiju_connectors.files import digest_file
from huiju_demo.bulk import write_penalty_xlsx
from huiju_demo.ports import free_port

from huiju.ledger import make_load_id
from huiju.pipeline import send_feedback, validate_pending
from huiju_portal.config import PortalSettings
from huiju_portal.service import start, stop

ROWS = 60_000
SOURCE = "sthjj_penalty"


class Portal:
    """The portal started as ``huiju up`` starts it (:func:`huiju_portal.service.start`), on a free port."""

    def __init__(self, portal_env) -> None:
        self.settings = PortalSettings(port=free_port(), state_dir=portal_env.var / "portal")
        self.pid = start(self.settings)
        self.url = self.settings.address.rstrip("/")

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)

    def stop(self) -> None:
        assert stop(self.settings) == self.pid


@pytest.fixture
def workbook(portal_env, tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = portal_env.registry.source(SOURCE)
    return write_penalty_xlsx(tmp_path_factory.mktemp("big") / "大批量处罚.xlsx", source, ROWS, tag="K",
                              title="生态环境局环境行政处罚报送表")


def _client(portal: Portal, portal_env) -> httpx.Client:
    client = httpx.Client(base_url=portal.url, follow_redirects=True, timeout=300)
    page = client.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"username": "sthjj_submitter", "password": portal_env.passwords["sthjj_submitter"],
                                "login_token": token, "next": "/"})
    return client


def _upload_in_background(client: httpx.Client, path: Path) -> threading.Thread:
    page = client.get(f"/submit/{SOURCE}/upload")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    outcome: dict[str, object] = {}

    def send() -> None:
        try:
            outcome["response"] = client.post(f"/submit/{SOURCE}/upload", data={"csrf_token": csrf},
                                              files={"file": (path.name, path.read_bytes())})
        except httpx.HTTPError as exc:  # the server died under the request
            outcome["error"] = exc

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def _copied(conn: psycopg.Connection, database: str) -> int:
    row = conn.execute("select coalesce(max(tuples_processed), 0) from pg_stat_progress_copy where datname = %s",
                       (database,)).fetchone()
    return int(row[0])


def _stored(conn: psycopg.Connection, load_id: str) -> tuple[int, int, int]:
    raw = conn.execute("select to_regclass('raw.admin_penalty') is not null").fetchone()[0]
    return (conn.execute("select count(*) from ops.loads where load_id = %s", (load_id,)).fetchone()[0],
            conn.execute("select count(*) from raw.admin_penalty where _load_id = %s", (load_id,)).fetchone()[0]
            if raw else 0,
            conn.execute("select count(*) from portal.submissions where load_id = %s", (load_id,)).fetchone()[0])


def test_killed_mid_copy_leaves_nothing_and_killed_after_landing_the_dag_finishes(portal_env, workbook: Path,
                                                                                  monkeypatch) -> None:
    load_id = make_load_id(SOURCE, digest_file(workbook).sha256)
    database = psycopg.conninfo.conninfo_to_dict(portal_env.url)["dbname"]
    with psycopg.connect(portal_env.url, autocommit=True) as watcher:
        for kill_after_rows in (1, ROWS // 3):
            portal = Portal(portal_env)
            thread = _upload_in_background(_client(portal, portal_env), workbook)
            deadline = time.monotonic() + 120
            while _copied(watcher, database) < kill_after_rows:
                assert thread.is_alive(), "the upload finished before it could be killed: make the file larger"
                assert time.monotonic() < deadline, "COPY never started"
                time.sleep(0.005)
            portal.kill()
            thread.join(timeout=60)
            deadline = time.monotonic() + 30
            while _copied(watcher, database) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _stored(watcher, load_id) == (0, 0, 0)

        # Killed once the batch has landed (its rows, ledger row and submitter committed together).
        portal = Portal(portal_env)
        thread = _upload_in_background(_client(portal, portal_env), workbook)
        deadline = time.monotonic() + 120
        while watcher.execute("select status from ops.loads where load_id = %s", (load_id,)).fetchone() is None:
            assert thread.is_alive() and time.monotonic() < deadline, "the batch never landed"
            time.sleep(0.005)
        portal.kill()
        thread.join(timeout=60)
        status = watcher.execute("select status from ops.loads where load_id = %s", (load_id,)).fetchone()[0]
        assert _stored(watcher, load_id) == (1, ROWS, 1)

    monkeypatch.setenv("HUIJU_WAREHOUSE_URL", portal_env.url)
    if status == "received":  # the usual case: killed while validating; the DAG's steps take over
        assert [r.load_id for r in validate_pending(SOURCE, portal_env.registry)] == [load_id]
    send_feedback(SOURCE, portal_env.registry)
    with psycopg.connect(portal_env.url) as conn:
        assert conn.execute("select status, rows_received from ops.loads where load_id = %s",
                            (load_id,)).fetchone() == ("validated", ROWS)

    # Uploaded again after all that: recognised, never landed twice.
    portal = Portal(portal_env)
    try:
        client = _client(portal, portal_env)
        thread = _upload_in_background(client, workbook)
        thread.join(timeout=300)
        again = client.get(f"/history/{load_id}")
        assert again.status_code == 200 and "校验通过" in again.text
    finally:
        portal.stop()
    with psycopg.connect(portal_env.url) as conn:
        assert _stored(conn, load_id) == (1, ROWS, 1)
