"""The FTP channel end to end: a real pyftpdlib server on loopback, collect() into a real warehouse.

The source is the demo's 城市管理局 (``cgj_penalty``: GB18030 CSV, ``.done`` marker with size and
sha256, files moved to ``processed/`` after landing). Each test uses its own file names and
content, so the tests do not see each other's files in the module's warehouse.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import shutil
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from huiju_demo.ftp_server import FtpServer, serve_ftp
from huiju_demo.simulators._filedrop import marker_text

from huiju.channels import ConnectionInfo
from huiju.landing import LandResult
from huiju.registry import Registry
from tests.support.filedrop import backdate, demo_file, html_workbook, query, registry, run_collect, url

__all__ = ["registry", "url"]  # fixtures shared with the other file-drop channel's tests

USER, PASSWORD = "cgj", "cgj-test-pw"
SOURCE = "cgj_penalty"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FtpServer]:
    root = tmp_path / "root"
    root.mkdir()
    with serve_ftp(root, user=USER, password=PASSWORD) as running:
        yield running


def collect(url: str, registry: Registry, server: FtpServer) -> list[LandResult]:
    info = ConnectionInfo("huiju_cgj_ftp", server.host, server.port, USER, PASSWORD)
    return run_collect(url, registry, registry.source(SOURCE), info)


def deliver(registry: Registry, server: FtpServer, name: str, seed: int) -> Path:
    """The department's upload: the data file, then its marker."""
    path = demo_file(registry, registry.source(SOURCE), server.root, name, seed)
    mark(path)
    return path


def mark(path: Path) -> None:
    path.with_name(path.name + ".done").write_text(marker_text(path), encoding="utf-8")


def test_marked_file_lands_once_is_moved_and_a_rerun_takes_nothing(url: str, registry: Registry,
                                                                   server: FtpServer) -> None:
    deliver(registry, server, "cgj_penalty_a1.csv", seed=201)
    (result,) = collect(url, registry, server)
    assert (result.reference, result.outcome, result.rows_received) == ("cgj_penalty_a1.csv", "landed", 20)
    processed = server.root / "processed"
    assert sorted(p.name for p in processed.iterdir()) == ["cgj_penalty_a1.csv", "cgj_penalty_a1.csv.done"]
    assert not (server.root / "cgj_penalty_a1.csv").exists()
    assert collect(url, registry, server) == []
    assert query(url, "select count(*) from ops.loads where reference = 'cgj_penalty_a1.csv'") == [(1,)]


def test_same_content_again_is_a_repeat_and_a_new_version_is_a_new_load(url: str, registry: Registry,
                                                                        server: FtpServer) -> None:
    first = deliver(registry, server, "cgj_penalty_b1.csv", seed=202)
    copy = server.root / "cgj_penalty_b2.csv"
    shutil.copy(first, copy)
    mark(copy)
    results = {r.reference: r for r in collect(url, registry, server)}
    assert {ref: r.outcome for ref, r in results.items()} == {"cgj_penalty_b1.csv": "landed",
                                                              "cgj_penalty_b2.csv": "repeat"}
    assert results["cgj_penalty_b2.csv"].load_id == results["cgj_penalty_b1.csv"].load_id
    # The department corrects the file and sends it again under the same name.
    deliver(registry, server, "cgj_penalty_b1.csv", seed=203)
    (second,) = collect(url, registry, server)
    assert (second.reference, second.outcome) == ("cgj_penalty_b1.csv", "landed")
    assert second.load_id != results["cgj_penalty_b1.csv"].load_id


def test_an_upload_killed_midway_is_never_ingested_and_reported_after_the_grace_period(
        url: str, registry: Registry, server: FtpServer) -> None:
    full = demo_file(registry, registry.source(SOURCE), server.root, "cgj_penalty_c1.csv", seed=204)
    data = full.read_bytes()
    full.write_bytes(data[: len(data) // 2])  # the uploader died at 50%: no marker was written
    assert collect(url, registry, server) == []
    assert query(url, "select count(*) from ops.remote_file_events where remote_name = %s", full.name) == [(0,)]
    backdate(full, timedelta(hours=3))  # past cgj's 120-minute grace period
    assert collect(url, registry, server) == []
    ((kind, notice),) = query(url, "select kind, notice from ops.remote_file_events where remote_name = %s",
                              full.name)
    assert kind == "stale_incomplete" and "上传未完成" in notice
    assert query(url, "select count(*) from ops.loads where reference = %s", full.name) == [(0,)]


def test_a_marker_with_a_wrong_hash_holds_the_file_with_a_reason(url: str, registry: Registry,
                                                                 server: FtpServer) -> None:
    path = demo_file(registry, registry.source(SOURCE), server.root, "cgj_penalty_d1.csv", seed=205)
    size = path.stat().st_size
    path.with_name(path.name + ".done").write_text(f"size={size}\nsha256={hashlib.sha256(b'x').hexdigest()}\n")
    assert collect(url, registry, server) == []
    assert path.exists()  # held on the server, not moved, not landed
    ((kind, detail, notice),) = query(url, "select kind, detail, notice from ops.remote_file_events"
                                           " where remote_name = %s", path.name)
    assert kind == "marker_mismatch" and "sha256" in detail and "完成标记不一致" in notice
    assert query(url, "select count(*) from ops.loads where reference = %s", path.name) == [(0,)]
    # The department rewrites the marker: the file is taken.
    mark(path)
    assert [r.outcome for r in collect(url, registry, server)] == ["landed"]


def test_a_gzipped_csv_lands_as_its_member(url: str, registry: Registry, server: FtpServer) -> None:
    plain = demo_file(registry, registry.source(SOURCE), server.root, "cgj_penalty_e1.csv", seed=206)
    packed = server.root / "cgj_penalty_e1.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    mark(packed)
    source = registry.source(SOURCE).model_copy(update={"file_pattern": "cgj_penalty_*.csv.gz"})
    info = ConnectionInfo("huiju_cgj_ftp", server.host, server.port, USER, PASSWORD)
    (result,) = run_collect(url, registry, source, info)
    assert (result.reference, result.outcome, result.rows_received) == (
        "cgj_penalty_e1.csv.gz!cgj_penalty_e1.csv", "landed", 20)


def test_an_html_page_named_csv_is_a_failed_load(url: str, registry: Registry, server: FtpServer) -> None:
    path = html_workbook(server.root / "cgj_penalty_f1.csv")
    mark(path)
    (result,) = collect(url, registry, server)
    assert result.outcome == "failed" and "网页（HTML）" in (result.error or "")
    assert path.exists()  # a refused file is not moved to processed/


def test_an_html_page_is_reported_to_the_department_naming_the_file(url: str, registry: Registry,
                                                                     server: FtpServer) -> None:
    path = html_workbook(server.root / "cgj_penalty_f2.csv")
    mark(path)
    (result,) = collect(url, registry, server)
    assert result.outcome == "failed"
    ((kind, department, notice, notified),) = query(
        url, "select kind, department, notice, notified_at from ops.remote_file_events where remote_name = %s",
        path.name)
    assert (kind, department, notified) == ("refused_file", registry.source(SOURCE).department, None)
    assert "“cgj_penalty_f2.csv”" in notice and "网页（HTML）" in notice and "重新上传" in notice


def _demo_records(registry: Registry, folder: Path, seed: int) -> list[dict[str, str]]:
    """The demo's rows of the source as header → value dicts (what a department would export as JSON)."""
    plain = demo_file(registry, registry.source(SOURCE), folder, f"rows-{seed}.csv", seed=seed)
    with plain.open(encoding="gb18030", newline="") as handle:
        rows = list(csv.DictReader(handle))
    plain.unlink()
    return rows


def _take(url: str, registry: Registry, server: FtpServer, pattern: str, **update: object) -> list[LandResult]:
    source = registry.source(SOURCE).model_copy(update={"file_pattern": pattern, **update})
    info = ConnectionInfo("huiju_cgj_ftp", server.host, server.port, USER, PASSWORD)
    return run_collect(url, registry, source, info)


def test_json_drops_land_as_records_plain_and_gzipped(url: str, registry: Registry, server: FtpServer,
                                                       tmp_path: Path) -> None:
    rows = _demo_records(registry, tmp_path, seed=207)
    keyed = server.root / "cgj_penalty_j1.json"
    keyed.write_text(json.dumps({"count": len(rows), "data": rows}, ensure_ascii=False), encoding="utf-8")
    mark(keyed)
    (result,) = _take(url, registry, server, "cgj_penalty_*.json", format="json", records_key="data")
    assert (result.reference, result.outcome, result.rows_received) == ("cgj_penalty_j1.json", "landed", 20)
    names = query(url, "select party_name from raw.admin_penalty where _load_id = %s order by _row_no", result.load_id)
    assert [n for (n,) in names] == [r["当事人名称"] or None for r in rows]
    lines = server.root / "cgj_penalty_j2.jsonl.gz"
    lines.write_bytes(gzip.compress("\n".join(json.dumps(r, ensure_ascii=False) for r in reversed(rows)).encode()))
    mark(lines)
    (packed,) = _take(url, registry, server, "cgj_penalty_*.jsonl.gz", format="json")
    assert (packed.reference, packed.outcome, packed.rows_received) == (
        "cgj_penalty_j2.jsonl.gz!cgj_penalty_j2.jsonl", "landed", 20)


def test_xml_drops_land_as_records_and_hostile_xml_is_refused_and_reported(url: str, registry: Registry,
                                                                          server: FtpServer, tmp_path: Path) -> None:
    source = registry.source(SOURCE)
    rows = _demo_records(registry, tmp_path, seed=208)
    fields = {header: source.columns[header] for header in rows[0]}
    records = "".join(
        "<记录>" + "".join(f"<{fields[h]}>{escape(v)}</{fields[h]}>" for h, v in row.items()) + "</记录>"
        for row in rows)
    member = tmp_path / "penalties.xml"
    member.write_text(f'<?xml version="1.0" encoding="UTF-8"?><导出><数据>{records}</数据></导出>', encoding="utf-8")
    with zipfile.ZipFile(server.root / "cgj_penalty_x1.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(member, "penalties.xml")
    mark(server.root / "cgj_penalty_x1.zip")
    xml_source = {"format": "xml", "record_element": "记录", "columns": {f: f for f in fields.values()}}
    (result,) = _take(url, registry, server, "cgj_penalty_x*.zip", **xml_source)
    assert (result.reference, result.outcome, result.rows_received) == (
        "cgj_penalty_x1.zip!penalties.xml", "landed", 20)
    hostile = server.root / "cgj_penalty_x2.xml"
    hostile.write_text('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                       "<r><记录><party_name>&x;</party_name></记录></r>", encoding="utf-8")
    mark(hostile)
    (refused,) = _take(url, registry, server, "cgj_penalty_x*.xml", **xml_source)
    assert refused.outcome == "failed" and "XML refused" in (refused.error or "")
    ((notice,),) = query(url, "select notice from ops.remote_file_events where remote_name = %s and kind = %s",
                         hostile.name, "refused_file")
    assert "“cgj_penalty_x2.xml”" in notice and "DTD" in notice
    assert hostile.exists()  # refused files stay on the server for the department to replace


def test_a_download_that_keeps_failing_is_reported_and_nothing_lands(url: str, registry: Registry,
                                                                     server: FtpServer) -> None:
    path = deliver(registry, server, "cgj_penalty_t1.csv", seed=209)
    faults = server.faults
    faults.target, faults.cut_after, faults.failures, faults.mode = path.name, 1000, 100, "drop"
    source = registry.source(SOURCE)
    settings = source.channel_settings.model_copy(update={"attempts": 1})
    (result,) = _take(url, registry, server, source.file_pattern, channel_settings=settings)
    assert result.outcome == "failed"
    ((kind, notice),) = query(url, "select kind, notice from ops.remote_file_events where remote_name = %s",
                              path.name)
    assert kind == "transfer_failed" and "“cgj_penalty_t1.csv”" in notice
    assert query(url, "select count(*) from ops.loads where reference = %s", path.name) == [(0,)]
    faults.failures = 0
    assert [r.outcome for r in collect(url, registry, server)] == ["landed"]  # the next run takes it whole
