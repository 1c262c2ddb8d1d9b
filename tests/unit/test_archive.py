"""The content-addressed archive: originals stored once, read-only, never half-written."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from huiju.archive import archive_bytes, archive_file, archive_relpath


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
