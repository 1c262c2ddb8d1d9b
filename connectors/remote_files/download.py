"""A download's local side: hashed while received, verified, promoted atomically, nothing left behind."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from huiju_connectors.files import digest_file

from .markers import verify_against_marker
from .model import FetchedFile, MarkerMismatch, MarkerSpec, RemoteFile

log = logging.getLogger("huiju_connectors.remote_files")



def promote(tmp: Path, final: Path) -> None:
    """fsync ``tmp`` and atomically ``os.replace`` it onto ``final`` (same directory)."""
    with tmp.open("rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    # fsync the directory so the rename itself survives a crash.
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def resume_hasher(tmp: Path, offset: int) -> hashlib._Hash:
    """A sha256 fed with the first ``offset`` bytes already in ``tmp``, to continue while downloading.

    Hashing the bytes as they arrive saves reading the whole file back afterwards (at 200 MB that
    second pass costs about as much as the transfer); a resumed download re-hashes only its prefix.
    """
    hasher = hashlib.sha256()
    if offset:
        with tmp.open("rb") as fh:
            left = offset
            while left and (chunk := fh.read(min(left, 1 << 20))):
                hasher.update(chunk)
                left -= len(chunk)
    return hasher


def finish_download(
    remote: RemoteFile, tmp: Path, final: Path, spec: MarkerSpec | None, safe_name: str, sha256: str | None = None
) -> FetchedFile:
    """Verify a complete temporary download against the marker and promote it; remove it on mismatch.

    ``sha256`` is the digest computed while downloading, if the protocol did; else it is computed here.
    """
    if sha256 is None:
        digest = digest_file(tmp)
        size, sha = digest.bytes, digest.sha256
    else:
        size, sha = tmp.stat().st_size, sha256
    try:
        verify_against_marker(remote.name, spec, size, sha)
    except MarkerMismatch:
        tmp.unlink(missing_ok=True)
        raise
    promote(tmp, final)
    log.info("downloaded %s -> %s (%d bytes, sha256 %s)", remote.name, final, size, sha)
    return FetchedFile(remote_name=remote.name, safe_name=safe_name, local_path=final, size=size, sha256=sha)
