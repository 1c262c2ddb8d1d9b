"""Content-addressed archive of every original the platform receives, so any load can be replayed.

An original is stored once under ``<archive>/<sha[0:2]>/<sha[2:4]>/<sha256>`` whatever it was
called; the ledger maps deliveries (names, sources) to it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from huiju.settings import get_settings


def archive_relpath(sha256: str) -> str:
    """Where content with this hash lives, relative to the archive root."""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def archive_file(source: Path, sha256: str, root: Path | None = None) -> str:
    """Copy ``source`` into the archive (once; atomically) and return its relative path.

    The copy goes to a temporary name beside its final place and is renamed, so a crash
    never leaves a partial original where a complete one is expected.
    """
    root = root or get_settings().archive_dir
    rel = archive_relpath(sha256)
    target = root / rel
    if target.exists():
        return rel
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        os.close(fd)
        shutil.copyfile(source, tmp)  # sendfile(2) on Linux: the bytes never pass through Python
        with open(tmp, "rb+") as out:
            os.fsync(out.fileno())
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rel


def archived_path(rel: str, root: Path | None = None) -> Path:
    """The absolute path of an archived original."""
    return (root or get_settings().archive_dir) / rel
