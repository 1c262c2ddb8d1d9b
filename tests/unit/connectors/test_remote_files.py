"""Completeness rules, markers and safe names, on fake listings (no servers)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from huiju_connectors.ftp import parse_mlsd
from huiju_connectors.remote_files import (
    Completeness,
    MarkerMismatch,
    MarkerSpec,
    RemoteFile,
    UnsafeName,
    evaluate,
    local_target,
    parse_marker,
    safe_local_name,
    verify_against_marker,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MARKER = Completeness(mode="marker", grace=timedelta(hours=2))
RENAME = Completeness(mode="rename", grace=timedelta(hours=2))


def f(name: str, minutes_ago: float = 1, size: int = 10) -> RemoteFile:
    return RemoteFile(name=name, size=size, mtime=NOW - timedelta(minutes=minutes_ago))


def names(files: list) -> list[str]:
    return [x.name for x in files]


# ------------------------------------------------------------------------------------------ marker rule


def test_marker_rule_takes_only_marked_files() -> None:
    listing = [
        f("a.csv"), f("a.csv.done"),
        f("b.csv"), f("b.csv.ok"),
        f("c.csv"),  # no marker yet
        f("old.csv", minutes_ago=600),  # no marker, past grace
        f("d.csv.done"),  # marker without data
        f("readme.txt"), f("readme.txt.done"),  # not matching the pattern
    ]
    result = evaluate(listing, pattern="*.csv", completeness=MARKER, batch_size=10, now=NOW)
    assert names(result.candidates) == ["a.csv", "b.csv"]
    assert [c.marker for c in result.candidates] == ["a.csv.done", "b.csv.ok"]
    assert [(i.name, i.reason) for i in result.waiting] == [("c.csv", "awaiting_marker")]
    assert [(i.name, i.reason) for i in result.stale_incomplete] == [("old.csv", "stale_incomplete")]
    assert [(i.name, i.reason) for i in result.rejected] == [("d.csv.done", "orphan_marker")]
    assert "c.csv.done" in result.waiting[0].detail


def test_size_stability_is_not_completeness() -> None:
    # An unchanged, old file without a marker is stale, never a candidate.
    result = evaluate([f("x.csv", minutes_ago=10_000)], pattern="*", completeness=MARKER, batch_size=5, now=NOW)
    assert result.candidates == []
    assert names(result.stale_incomplete) == ["x.csv"]


def test_temp_names_are_never_data_even_with_a_marker_rule() -> None:
    listing = [f("a.csv.tmp"), f("a.csv.tmp.done"), f(".~b.csv"), f("~$c.xlsx")]
    result = evaluate(listing, pattern="*", completeness=MARKER, batch_size=5, now=NOW)
    assert result.candidates == []


# ------------------------------------------------------------------------------------------ rename rule


def test_rename_rule() -> None:
    listing = [
        f("final.csv"),
        f("upload.csv.part"),
        f("upload2.csv.tmp", minutes_ago=600),  # abandoned upload
        f(".~hidden.csv"),
        f("x.csv.filepart"),
        f("other.txt.part"),  # its final name does not match the pattern: ignored
    ]
    result = evaluate(listing, pattern="*.csv", completeness=RENAME, batch_size=10, now=NOW)
    assert names(result.candidates) == ["final.csv"]
    assert sorted(names(result.waiting)) == [".~hidden.csv", "upload.csv.part", "x.csv.filepart"]
    assert {i.reason for i in result.waiting} == {"uploading"}
    assert names(result.stale_incomplete) == ["upload2.csv.tmp"]


# ------------------------------------------------------------------------------------------ ordering


def test_stable_order_and_bounded_batches() -> None:
    listing = [f(f"f{i:04d}.csv", minutes_ago=(i % 7)) for i in range(1000)]
    taken: set[str] = set()
    order: list[str] = []
    while True:
        result = evaluate(
            reversed(listing), pattern="*.csv", completeness=RENAME, batch_size=128, now=NOW,
            skip=lambda r: r.name in taken,
        )
        assert len(result.candidates) <= 128
        if not result.candidates:
            assert result.remaining == 0
            break
        assert result.remaining == 1000 - len(taken) - len(result.candidates)
        order.extend(names(result.candidates))
        taken.update(names(result.candidates))
    expected = sorted(listing, key=lambda r: (r.mtime, r.name))
    assert order == names(expected)


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        evaluate([], pattern="*", completeness=MARKER, batch_size=0)


# ------------------------------------------------------------------------------------------ markers


def test_parse_marker_variants() -> None:
    sha = hashlib.sha256(b"x").hexdigest()
    assert parse_marker("a", b"") == MarkerSpec()
    assert parse_marker("a", b"OK\n") == MarkerSpec()
    assert parse_marker("a", f"size=1\nsha256={sha.upper()}\n".encode()) == MarkerSpec(1, sha)
    assert parse_marker("a", "\ufeffSIZE: 1\r\n".encode()) == MarkerSpec(1, None)
    assert parse_marker("a", f'{{"size": 1, "sha256": "{sha}"}}'.encode()) == MarkerSpec(1, sha)
    assert parse_marker("a", b'{"size": "7"}') == MarkerSpec(7, None)


@pytest.mark.parametrize(
    "content",
    [b"size=abc", b"size=-1", b"sha256=xyz", b'{"size": true}', b'{"size": 1.5}', b"{broken"],
)
def test_malformed_marker_is_a_mismatch_naming_the_file(content: bytes) -> None:
    with pytest.raises(MarkerMismatch, match=r"^data\.csv: "):
        parse_marker("data.csv", content)


def test_verify_against_marker() -> None:
    sha = hashlib.sha256(b"abc").hexdigest()
    verify_against_marker("d.csv", None, 3, sha)
    verify_against_marker("d.csv", MarkerSpec(3, sha), 3, sha)
    verify_against_marker("d.csv", MarkerSpec(0, None), 0, hashlib.sha256(b"").hexdigest())
    with pytest.raises(MarkerMismatch, match="size is 3 bytes but its marker announces 4"):
        verify_against_marker("d.csv", MarkerSpec(4, None), 3, sha)
    with pytest.raises(MarkerMismatch, match="sha256"):
        verify_against_marker("d.csv", MarkerSpec(None, "0" * 64), 3, sha)


# ------------------------------------------------------------------------------------------ names


@pytest.mark.parametrize(
    "name",
    ["../x", "..", ".", "", "/etc/passwd", "a/b", "a\\b", "..\\..\\x", "a\x00b", "a\nb", "a\rb",
     "a\x1bb", "report\u202ecod.exe", "a\x7fb"],
)
def test_safe_local_name_rejects_path_tricks(name: str) -> None:
    with pytest.raises(UnsafeName):
        safe_local_name(name)


def test_safe_local_name_keeps_ordinary_names() -> None:
    for name in ["数据.csv", "a b.csv", ".~x", "résumé.xlsx", "-rf", "a..b.csv"]:
        assert safe_local_name(name) == name


def test_overlong_names_are_shortened_keeping_extension_and_uniqueness() -> None:
    a = "市场监管局" * 40 + "甲.csv"  # > 255 bytes in UTF-8
    b = "市场监管局" * 40 + "乙.csv"
    sa, sb = safe_local_name(a), safe_local_name(b)
    assert len(sa.encode()) <= 255 and len(sb.encode()) <= 255
    assert sa.endswith(".csv") and sb.endswith(".csv")
    assert sa != sb
    assert safe_local_name(a) == sa  # deterministic


def test_local_target_stays_inside_dest(tmp_path: Path) -> None:
    assert local_target(tmp_path, "a.csv") == tmp_path.resolve() / "a.csv"
    with pytest.raises(UnsafeName):
        local_target(tmp_path, "../a.csv")
    # A symlink planted in the landing directory does not redirect the write.
    (tmp_path / "link.csv").symlink_to(tmp_path.parent / "elsewhere.csv")
    with pytest.raises(UnsafeName):
        local_target(tmp_path, "link.csv")


# ------------------------------------------------------------------------------------------ listings


def test_parse_mlsd_decodes_gbk_names_and_reports_undecodable_ones() -> None:
    raw = (
        b"type=cdir;modify=20240501000000; .\r\n"
        b"type=dir;modify=20240501000000; sub\r\n"
        b"type=file;size=12;modify=20240501083000.123; " + "行政处罚.csv".encode("gbk") + b"\r\n"
        b"type=file;size=3;modify=20240501083001; name with spaces.csv\r\n"
        b"type=file;size=1;modify=20240501083002; \xff\xfe.csv\r\n"
    )
    files, bad = parse_mlsd(raw, "gbk")
    assert [(x.name, x.size) for x in files] == [("行政处罚.csv", 12), ("name with spaces.csv", 3)]
    assert files[0].mtime == datetime(2024, 5, 1, 8, 30, 0, 123000, tzinfo=UTC)
    assert [i.reason for i in bad] == ["undecodable_name"]
    assert "gbk" in bad[0].detail
    # The same GBK bytes read as UTF-8 are reported, not mangled.
    files, bad = parse_mlsd(raw, "utf-8")
    assert names(files) == ["name with spaces.csv"]
    assert len(bad) == 2
