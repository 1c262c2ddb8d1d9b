"""The SFTP channel end to end: a real asyncssh server on loopback, collect() into a real warehouse.

The source is the demo's 住房和城乡建设局 (``zjj_penalty``: xlsx, rename rule, files left on the
server and remembered by the ledger). Each test uses its own file names and content, so the
tests do not see each other's files in the module's warehouse.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import asyncssh
import pytest
from huiju_connectors.sftp import HostKeyMismatch
from huiju_demo.sftp_server import SftpServer, serve_sftp

from huiju.channels import ConnectionInfo
from huiju.landing import LandResult
from huiju.registry import Registry
from tests.support.filedrop import (
    backdate,
    demo_file,
    html_workbook,
    legacy_xls,
    macro_workbook,
    query,
    registry,
    run_collect,
    url,
    zip_bomb,
    zip_of,
)

__all__ = ["registry", "url"]  # fixtures shared with the other file-drop channel's tests

USER, PASSWORD = "zjj", "zjj-test-pw"
SOURCE = "zjj_penalty"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SftpServer]:
    root = tmp_path / "root"
    (root / "upload").mkdir(parents=True)
    with serve_sftp(root, user=USER, password=PASSWORD) as running:
        yield running


def drop(server: SftpServer) -> Path:
    return server.root / "upload"


def connection(server: SftpServer, pin: str | None = None) -> ConnectionInfo:
    return ConnectionInfo("huiju_zjj_sftp", server.host, server.port, USER, PASSWORD,
                          extra={"host_key": pin or server.pin})


def collect(url: str, registry: Registry, server: SftpServer) -> list[LandResult]:
    return run_collect(url, registry, registry.source(SOURCE), connection(server))


def outcomes(results: list[LandResult]) -> list[tuple[str, str]]:
    return [(r.reference, r.outcome) for r in results]


def test_complete_file_lands_once_and_a_rerun_takes_nothing(url: str, registry: Registry,
                                                              server: SftpServer) -> None:
    path = demo_file(registry, registry.source(SOURCE), drop(server), "zjj_penalty_a1.xlsx", seed=101)
    (result,) = collect(url, registry, server)
    assert (result.reference, result.outcome, result.rows_received) == ("zjj_penalty_a1.xlsx", "landed", 20)
    # `after_success: leave`: the department keeps its file; the ledger remembers it.
    assert path.exists()
    assert query(url, "select outcome, load_ids from ops.remote_files where remote_name = %s",
                 "zjj_penalty_a1.xlsx") == [("landed", [result.load_id])]
    assert collect(url, registry, server) == []  # not even downloaded again
    assert query(url, "select count(*) from ops.loads where reference = %s", "zjj_penalty_a1.xlsx") == [(1,)]


def test_same_content_under_another_name_is_a_repeat(url: str, registry: Registry, server: SftpServer) -> None:
    first = demo_file(registry, registry.source(SOURCE), drop(server), "zjj_penalty_b1.xlsx", seed=102)
    assert outcomes(collect(url, registry, server)) == [("zjj_penalty_b1.xlsx", "landed")]
    shutil.copy(first, drop(server) / "zjj_penalty_b2.xlsx")
    (again,) = collect(url, registry, server)
    assert (again.reference, again.outcome) == ("zjj_penalty_b2.xlsx", "repeat")
    assert query(url, "select repeat_of from ops.repeats where reference = %s", "zjj_penalty_b2.xlsx") == [
        (again.load_id,)]


def test_a_new_version_under_the_same_name_is_a_new_load(url: str, registry: Registry, server: SftpServer) -> None:
    source = registry.source(SOURCE)
    path = demo_file(registry, source, drop(server), "zjj_penalty_c1.xlsx", seed=103)
    backdate(path, timedelta(minutes=10))
    (first,) = collect(url, registry, server)
    demo_file(registry, source, drop(server), "zjj_penalty_c1.xlsx", seed=104)  # corrected and re-sent
    (second,) = collect(url, registry, server)
    assert (first.outcome, second.outcome) == ("landed", "landed")
    assert first.load_id != second.load_id
    assert query(url, "select count(*) from ops.remote_files where remote_name = %s", "zjj_penalty_c1.xlsx") == [
        (2,)]


def test_an_upload_killed_midway_is_never_ingested_and_reported_after_the_grace_period(
        url: str, registry: Registry, server: SftpServer) -> None:
    full = demo_file(registry, registry.source(SOURCE), drop(server), "zjj_penalty_d1.xlsx", seed=105)
    partial = drop(server) / "zjj_penalty_d1.xlsx.part"
    partial.write_bytes(full.read_bytes()[: full.stat().st_size // 2])  # the uploader died at 50%
    full.unlink()
    assert collect(url, registry, server) == []
    assert query(url, "select count(*) from ops.remote_file_events where remote_name = %s", partial.name) == [(0,)]
    backdate(partial, timedelta(hours=5))  # past zjj's 240-minute grace period
    assert collect(url, registry, server) == []
    assert collect(url, registry, server) == []  # reported once, not once per poll
    ((kind, department, notice, notified),) = query(
        url, "select kind, department, notice, notified_at from ops.remote_file_events where remote_name = %s",
        partial.name)
    assert (kind, department, notified) == ("stale_incomplete", "zjj", None)
    assert "上传未完成" in notice and "240" in notice
    assert query(url, "select count(*) from ops.loads where reference like 'zjj_penalty_d1%%'") == [(0,)]


@pytest.mark.parametrize(("make", "reason"), [
    (zip_bomb, "压缩炸弹"),
    (html_workbook, "网页（HTML）"),
    (macro_workbook, "启用宏"),
    (legacy_xls, "旧版Excel格式"),
])
def test_hostile_workbooks_are_failed_loads_with_a_reason(url: str, registry: Registry, server: SftpServer,
                                                           make, reason: str) -> None:
    name = f"zjj_penalty_{make.__name__}.xlsx"
    make(drop(server) / name)
    (result,) = collect(url, registry, server)
    assert result.outcome == "failed"
    assert reason in (result.error or "")
    assert query(url, "select status, error from ops.loads where load_id = %s", result.load_id) == [
        ("failed", result.error)]
    assert query(url, "select count(*) from raw.admin_penalty where _load_id = %s", result.load_id) == [(0,)]
    ((kind, notice),) = query(url, "select kind, notice from ops.remote_file_events where remote_name = %s", name)
    assert kind == "refused_file" and f"“{name}”" in notice and reason in notice
    assert collect(url, registry, server) == []  # remembered: the department must send a new version


def test_each_workbook_of_a_zip_is_its_own_batch(url: str, registry: Registry, server: SftpServer,
                                                 tmp_path: Path) -> None:
    source = registry.source(SOURCE)
    parts = tmp_path / "parts"
    parts.mkdir()
    one = demo_file(registry, source, parts, "one.xlsx", seed=106)
    two = demo_file(registry, source, parts, "two.xlsx", seed=107)
    zip_of(drop(server) / "zjj_penalty_e1.zip", {"一月/one.xlsx": one, "two.xlsx": two})
    source = source.model_copy(update={"file_pattern": "zjj_penalty_*.zip"})
    results = run_collect(url, registry, source, connection(server))
    assert outcomes(results) == [("zjj_penalty_e1.zip!two.xlsx", "landed"),
                                 ("zjj_penalty_e1.zip!一月/one.xlsx", "landed")]
    ((archive_path, load_ids),) = query(url, "select archive_path, load_ids from ops.remote_files"
                                             " where remote_name = 'zjj_penalty_e1.zip'")
    assert archive_path and len(load_ids) == 2


def test_an_unknown_host_key_is_refused(url: str, registry: Registry, server: SftpServer) -> None:
    demo_file(registry, registry.source(SOURCE), drop(server), "zjj_penalty_f1.xlsx", seed=108)
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    with pytest.raises(HostKeyMismatch):
        run_collect(url, registry, registry.source(SOURCE), connection(server, pin=other))
    assert query(url, "select count(*) from ops.loads where reference = 'zjj_penalty_f1.xlsx'") == [(0,)]
    ((kind, detail, notice, notified),) = query(
        url, "select kind, detail, notice, notified_at from ops.remote_file_events where remote_name = %s",
        f"{server.host}:{server.port}")
    assert (kind, notified) == ("host_key_mismatch", None)
    assert "SHA256:" in detail and "主机密钥" in notice and f"“{server.host}:{server.port}”" in notice
