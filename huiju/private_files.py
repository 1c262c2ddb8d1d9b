"""Files only the platform's own account can read: ``0600`` files in ``0700`` folders, from the moment they exist.

Archived originals, feedback workbooks, logs, the outbox and secrets (``airflow.cfg`` with its Fernet key,
JWT secret and metadata database URL) hold citizens' data or keys to it. A file created with the
default umask and ``chmod``-ed afterwards is readable by every local user in between, so every writer
here creates its file with the final mode (``os.open(..., mode)`` or ``mkstemp``, which is ``0600``)
and, where the content must appear whole, renames a private temporary onto the final name.

Each entry point (the ``huiju`` command, the portal, Airflow's processes it starts) also sets the
umask to ``077`` (:func:`restrict_umask`), so files written by libraries (Airflow's task logs,
dbt's logs, GX's stores) are private too.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal, TextIO

#: Mode of every file the platform writes (archived originals: :data:`READ_ONLY_FILE`).
PRIVATE_FILE = 0o600
#: Mode of an archived original: the owner reads it, nobody rewrites it.
READ_ONLY_FILE = 0o400
#: Mode of every folder the platform creates.
PRIVATE_DIR = 0o700
#: Mode of the platform's root folder (``var/``): others may pass through to a path they are given but can
#: list and read nothing. The embedded PostgreSQL runs as its own OS user (``pgserver``) when the platform
#: runs as root and must reach ``var/pgdata`` (itself 0700, that user's); with ``var/`` at 0700 the server
#: loses its data directory at its next checkpoint. Everything inside ``var/`` is 0700/0600.
PRIVATE_ROOT = 0o711
#: The umask of the platform's processes: nothing for group or others.
PRIVATE_UMASK = 0o077


def restrict_umask() -> int:
    """Set this process's umask to ``077`` (inherited by the processes it starts); return the previous one."""
    return os.umask(PRIVATE_UMASK)


def private_root(path: Path | str) -> Path:
    """``path`` (the platform's ``var/``) created or set to :data:`PRIVATE_ROOT` (``0711``)."""
    path = Path(path)
    private_dir(path)
    os.chmod(path, PRIVATE_ROOT)
    return path


def private_dir(path: Path | str) -> Path:
    """``path`` as a folder only its owner can enter: created ``0700`` with its missing parents.

    An existing folder with group or other bits (from an older install) is tightened to ``0700``;
    existing parents are left alone (the platform's root folder, ``var/``, is made private itself).
    """
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.mkdir(folder, PRIVATE_DIR)
        os.chmod(folder, PRIVATE_DIR)  # a racing creator may have used its own umask
    if not missing and stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, PRIVATE_DIR)
    return path


@contextlib.contextmanager
def private_output(path: Path | str, mode: int = PRIVATE_FILE) -> Iterator[BinaryIO]:
    """Write ``path`` whole or not at all: a ``0600`` temporary beside it, fsynced, then renamed onto it.

    The folder is made private (:func:`private_dir`); ``mode`` is the final file's mode (never wider than
    ``0600``).
    """
    path = Path(path)
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600, exclusively
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        if mode != PRIVATE_FILE:
            os.chmod(tmp, mode & PRIVATE_FILE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private(path: Path | str, content: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write ``content`` to ``path`` as a ``0600`` file (atomically; see :func:`private_output`); return ``path``."""
    with private_output(path) as out:
        out.write(content.encode(encoding) if isinstance(content, str) else content)
    return Path(path)


def open_private(path: Path | str, mode: Literal["w", "a"] = "a", *, encoding: str = "utf-8") -> TextIO:
    """Open a text file (a log) for writing or appending, created ``0600`` in a private folder.

    A file that already exists with a wider mode is narrowed to ``0600`` before anything is written.
    """
    path = Path(path)
    private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        return os.fdopen(fd, mode, encoding=encoding)
    except BaseException:
        os.close(fd)
        raise
