"""The content-addressed archive: originals stored once, read-only, never half-written."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from huiju.archive import (
    PACKS,
    RowsArchiveWriter,
    archive_bytes,
    archive_file,
    archive_pack,
    archive_relpath,
    read_archived,
    read_rows_archive,
    records_of_text,
    records_text,
    rows_archive,
)


def test_archive_bytes_stores_once_read_only_like_archive_file(tmp_path: Path) -> None:
    content = "处罚决定书 page 1\n".encode()
    sha = hashlib.sha256(content).hexdigest()
    rel = archive_bytes(content, sha, root=tmp_path / "a")
    assert rel == archive_relpath(sha)
    stored = tmp_path / "a" / rel
    assert stored.read_bytes() == content
    assert not stat.S_IMODE(stored.stat().st_mode) & 0o222  # nobody rewrites an original
    assert archive_bytes(content, sha, root=tmp_path / "a") == rel  # a second time changes nothing
    assert sorted(p.name for p in stored.parent.iterdir()) == [sha]  # no temporary left behind

    source = tmp_path / "page.json"
    source.write_bytes(content)
    archive_file(source, sha, root=tmp_path / "b")
    assert (tmp_path / "b" / rel).read_bytes() == content
    assert stat.S_IMODE((tmp_path / "b" / rel).stat().st_mode) == stat.S_IMODE(stored.stat().st_mode)
    assert os.listdir(tmp_path / "b" / rel.rsplit("/", 1)[0]) == [sha]


def test_a_pack_keeps_each_page_as_received_and_is_stored_once(tmp_path: Path) -> None:
    pages = [f"第{n}页".encode() * n for n in range(1, 4)]
    digests = [hashlib.sha256(page).hexdigest() for page in pages]
    references = archive_pack(pages, digests, root=tmp_path)
    assert [read_archived(ref, root=tmp_path) for ref in references] == pages
    packs = [p for p in (tmp_path / PACKS).rglob("*") if p.is_file()]
    assert len(packs) == 1 and not stat.S_IMODE(packs[0].stat().st_mode) & 0o222
    assert archive_pack(pages, digests, root=tmp_path) == references  # the same pages again: the same pack
    assert [p for p in (tmp_path / PACKS).rglob("*") if p.is_file()] == packs
    # A whole original reads the same way, by its plain path.
    rel = archive_bytes(pages[0], digests[0], root=tmp_path)
    assert read_archived(rel, root=tmp_path) == pages[0]


def test_a_rows_archive_keeps_every_value_of_its_type_and_the_same_rows_make_the_same_bytes() -> None:
    records = [{"id": 3, "mc": "示范公司", "amount": Decimal("1.50"), "ratio": 0.1, "ok": True, "none": None,
                "at": dt.datetime(2026, 11, 20, 9, 0, 3, 12), "day": dt.date(2026, 11, 19),
                "clock": dt.time(23, 59), "blob": b"\x00\xff", "looks_typed": {"~": "other", "v": "x"}}]
    payload = rows_archive("records", records_text(records))
    assert payload == rows_archive("records", records_text(records))  # content-addressed: no timestamp inside
    kind, body = read_rows_archive(payload)
    assert kind == "records" and records_of_text(body) == records
    assert read_rows_archive(b"id,name\n1,x\n") is None  # any other original is not a rows archive


@pytest.mark.parametrize("cut", [1, 7, 4096, 1 << 18])
def test_a_rows_archive_written_as_the_rows_stream_is_the_same_bytes_however_they_are_cut(cut: int) -> None:
    body = b"".join(f"{n}\t\\N\t示范公司{n % 97}\t2026-11-{n % 28 + 1:02d}\n".encode() for n in range(3_000))
    writer = RowsArchiveWriter("copy")
    for start in range(0, len(body), cut):
        writer.write(body[start:start + cut])
    assert writer.finish() == rows_archive("copy", body)  # the same content address as the whole batch's


def test_a_rows_archive_writer_closed_unfinished_stops_its_thread() -> None:
    writer = RowsArchiveWriter("copy")
    writer.write(b"1\t\\N\tx\n")
    writer.close()
    assert not writer._thread.is_alive()


def test_a_rows_archive_writer_whose_compression_fails_raises_at_finish_and_never_blocks_a_write() -> None:
    class Broken:
        def compress(self, chunk: bytes) -> bytes:
            raise MemoryError("no room")

        def flush(self) -> bytes:
            return b""

    writer = RowsArchiveWriter("copy")
    writer._compressor = Broken()  # type: ignore[assignment]
    for _ in range(1_000):  # far more than the queue holds
        writer.write(b"1\t\\N\tx\n")
    with pytest.raises(MemoryError, match="no room"):
        writer.finish()
    assert not writer._thread.is_alive()
