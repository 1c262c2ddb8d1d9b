"""Content-addressed archive of every original the platform receives, so any load can be replayed.

An original is stored once under ``<archive>/<sha[0:2]>/<sha[2:4]>/<sha256>`` whatever it was
called; the ledger maps deliveries (names, sources) to it. Originals are ``0400`` (only the
platform's account reads them; nobody rewrites them) in ``0700`` folders, from the moment they exist.

Originals that arrive by the thousand — the pages of a web-service run — are stored in *packs*
(``<archive>/packs/<name[0:2]>/<name[2:4]>/<name>``): the pages landed together, back to back
in one file, each named in the ledger as ``<pack path>#<start>+<length>`` (:func:`read_archived`
reads either kind). Creating and fsyncing a file costs far more than writing its bytes
(measured on our ext4 machines: 2,000 files of 50 kB took 6-25 times as long as 200 files of
500 kB), so a run of 2,000 pages makes a few dozen files, not 2,000.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from huiju.private_files import READ_ONLY_FILE, private_dir
from huiju.settings import get_settings

#: Folder of the archive that holds packs (beside the two-level content-addressed folders).
PACKS = "packs"


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
    private_dir(target.parent)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")  # created 0600: private from the start
    try:
        os.close(fd)
        shutil.copyfile(source, tmp)  # sendfile(2) on Linux: the bytes never pass through Python
        with open(tmp, "rb+") as out:
            os.fsync(out.fileno())
        os.chmod(tmp, READ_ONLY_FILE)  # narrowing only: 0600 → 0400
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rel


def archive_bytes(content: bytes, sha256: str, root: Path | None = None) -> str:
    """Store ``content`` (whose sha256 the caller computed) like :func:`archive_file`; return its relative path."""
    return _store(content, archive_relpath(sha256), root)


def archive_pack(parts: Sequence[bytes], digests: Sequence[str], root: Path | None = None) -> list[str]:
    """Store several originals (``digests``: their sha256) as one pack; return each one's reference.

    The pack is named by the sha256 of its parts' digests, so the same pages in the same order
    make the same pack, stored once. A reference is ``<pack path>#<start>+<length>``.
    """
    if len(parts) != len(digests):
        raise ValueError("archive_pack: one digest per part")
    name = hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest()
    rel = _store(b"".join(parts), f"{PACKS}/{archive_relpath(name)}", root)
    references, start = [], 0
    for part in parts:
        references.append(f"{rel}#{start}+{len(part)}")
        start += len(part)
    return references


def read_archived(reference: str, root: Path | None = None) -> bytes:
    """The bytes of an archived original: a whole file, or one part of a pack (see :func:`archive_pack`)."""
    rel, _, part = reference.partition("#")
    path = archived_path(rel, root)
    if not part:
        return path.read_bytes()
    start, length = (int(n) for n in part.split("+"))
    with path.open("rb") as stored:
        stored.seek(start)
        return stored.read(length)


def _store(content: bytes, rel: str, root: Path | None) -> str:
    """Write ``content`` at ``rel`` under the archive, once, never half-written; return ``rel``.

    Written straight to a temporary name beside its final place (random, created read-only
    and exclusively, so no other writer can share it), fsynced and renamed: no intermediate
    file and a handful of system calls.
    """
    target = os.path.join(root or get_settings().archive_dir, rel)
    if os.path.exists(target):
        return rel
    # Named as archive_file names its temporaries; random, so a killed writer's leftover never collides.
    tmp = os.path.join(os.path.dirname(target), f".incoming-{os.urandom(8).hex()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, READ_ONLY_FILE)
    except FileNotFoundError:  # the first original under this prefix
        private_dir(os.path.dirname(target))
        fd = os.open(tmp, flags, READ_ONLY_FILE)
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
