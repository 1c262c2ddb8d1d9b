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


def archive_bytes(content: bytes, sha256: str, root: Path | None = None) -> str:
    """Store ``content`` (whose sha256 the caller computed) like :func:`archive_file`; return its relative path.

    Written straight to a temporary name beside its final place (random, created read-only
    and exclusively, so no other writer can share it), fsynced and renamed: no intermediate file
    and a handful of system calls, because a channel archives thousands of pages a run.
    """
    rel = archive_relpath(sha256)
    target = os.path.join(root or get_settings().archive_dir, rel)
    if os.path.exists(target):
        return rel
    # Named as archive_file names its temporaries; random, so a killed writer's leftover never collides.
    tmp = os.path.join(os.path.dirname(target), f".incoming-{os.urandom(8).hex()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o444)
    except FileNotFoundError:  # the first original under this prefix
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd = os.open(tmp, flags, 0o444)
    try:
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rel


def archived_path(rel: str, root: Path | None = None) -> Path:
    """The absolute path of an archived original."""
    return (root or get_settings().archive_dir) / rel
