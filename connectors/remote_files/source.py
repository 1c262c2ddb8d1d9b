"""The base of every file-drop connector: polling and the download discipline, written once."""

from __future__ import annotations

import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from huiju_connectors.retry import GaveUp, RetryPolicy

from .completeness import evaluate
from .download import finish_download
from .markers import parse_marker
from .model import (
    DEFAULT_MAX_DOWNLOAD_BYTES,
    MAX_MARKER_BYTES,
    Completeness,
    FetchedFile,
    Incomplete,
    MarkerSpec,
    PollResult,
    RemoteFile,
    RemoteFileError,
    TooLarge,
    TransferFailed,
)
from .names import local_target, safe_local_name, temp_download_path

log = logging.getLogger("huiju_connectors.remote_files")

#: A department's server gets this long to recover: 4 attempts, waits of up to 2, 4, 8 s (full jitter).
DROP_RETRY = RetryPolicy(attempts=4, base_delay=2.0, max_delay=60.0)


class DropSource(ABC):
    """What every file-drop server (FTP, FTPS, SFTP) does the same way; subclasses speak the protocol.

    A subclass provides the four protocol operations — :meth:`list_files`, :meth:`_read_marker_bytes`,
    :meth:`_transfer` and :meth:`move_to` — each with its own reconnect-and-retry; polling
    (listing + :func:`evaluate`) and the download discipline (safe name, marker read first,
    temporary name, verify, atomic promote, nothing left behind on failure) live here once, so
    the protocols cannot drift apart on the rules that keep a batch whole.

    Every drop has a ``host`` and ``port``, a ``directory``, the ``encoding`` of its file names,
    a ``timeout`` for any one wait on the server and a ``retry`` policy (default :data:`DROP_RETRY`).
    """

    def __init__(self, host: str, port: int, *, directory: str, encoding: str, timeout: float,
                 retry: RetryPolicy | None, max_bytes: int | None = None) -> None:
        "x".encode(encoding)  # fail now, not at the first listing, on a misspelt encoding
        self.host = host
        self.port = port
        self.directory = directory
        self.encoding = encoding
        self.timeout = timeout
        self.retry = retry or DROP_RETRY
        self.max_bytes = max_bytes or DEFAULT_MAX_DOWNLOAD_BYTES

    def check_size(self, remote: RemoteFile, size: int | None) -> None:
        """Refuse a file announced or received larger than ``max_bytes`` (raises :class:`TooLarge`)."""
        if size is not None and size > self.max_bytes:
            raise TooLarge(f"{remote.name}: {size} bytes, more than max_download_mb allows ({self.max_bytes} bytes); "
                           "not downloaded")

    def _exhausted(self, what: str, gave_up: GaveUp) -> TransferFailed:
        """The error for an operation whose every attempt failed (see :attr:`retry`)."""
        return TransferFailed(f"{what} on {self!r} failed after {gave_up.attempts} attempts: {gave_up.last!r}")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None:
        """Close the connection (safe to call twice)."""

    @abstractmethod
    def list_files(self) -> tuple[list[RemoteFile], list[Incomplete]]:
        """Every regular file in the drop directory, and entries whose names do not decode."""

    @abstractmethod
    def _read_marker_bytes(self, marker: str, limit: int) -> bytes:
        """The marker file's content; more than ``limit`` bytes may be cut (then refused) or refused."""

    @abstractmethod
    def _transfer(self, remote: RemoteFile, tmp: Path) -> str | None:
        """Fetch ``remote`` into ``tmp`` with retries, resuming from what ``tmp`` already holds.

        Returns the file's sha256 if it was computed on the way (see :func:`resume_hasher`).
        """

    @abstractmethod
    def move_to(self, remote_file: RemoteFile, processed_dir: str) -> str:
        """Move ``remote_file`` (and its marker) into ``processed_dir`` on the server; the new path."""

    def poll(
        self,
        pattern: str = "*",
        *,
        completeness: Completeness,
        batch_size: int = 100,
        now: datetime | None = None,
        skip: Callable[[RemoteFile], bool] | None = None,
    ) -> PollResult:
        """List once and return the next ``batch_size`` complete files plus incomplete/stale ones.

        See :func:`evaluate` for the rules.
        """
        files, undecodable = self.list_files()
        result = evaluate(
            files,
            pattern=pattern,
            completeness=completeness,
            batch_size=batch_size,
            now=now,
            skip=skip,
            rejected=undecodable,
        )
        log.info(
            "polled %r: %d listed, %d candidates (+%d more), %d waiting, %d stale, %d rejected",
            self, len(files), len(result.candidates), result.remaining, len(result.waiting),
            len(result.stale_incomplete), len(result.rejected),
        )
        return result

    def read_marker(self, remote: RemoteFile) -> MarkerSpec | None:
        """The ``size``/``sha256`` announced by ``remote``'s marker, or None without a marker."""
        if remote.marker is None:
            return None
        content = self._read_marker_bytes(remote.marker, MAX_MARKER_BYTES)
        if len(content) > MAX_MARKER_BYTES:
            raise RemoteFileError(f"{remote.marker}: marker is larger than {MAX_MARKER_BYTES} bytes")
        return parse_marker(remote.name, content)

    def download(self, remote_file: RemoteFile, dest_dir: str | Path) -> FetchedFile:
        """Download ``remote_file`` into ``dest_dir`` atomically and verify it.

        Returns the :class:`FetchedFile` (sha256 included). Raises :class:`MarkerMismatch` when
        the file contradicts its marker, :class:`UnsafeName` for a hostile name, and
        :class:`TransferFailed` when every attempt failed. In every failure case nothing is left
        in ``dest_dir``.
        """
        dest = Path(dest_dir)
        if not dest.is_dir():  # checked here so a local mistake is not retried as a network error
            raise FileNotFoundError(f"destination directory {dest} does not exist")
        safe = safe_local_name(remote_file.name)
        final = local_target(dest, safe)
        # The marker is read before the data: a marker rewritten during the download then
        # cannot vouch for bytes it never described.
        self.check_size(remote_file, remote_file.size)
        spec = self.read_marker(remote_file)
        tmp = temp_download_path(dest, safe, uuid.uuid4().hex[:12])
        try:
            sha256 = self._transfer(remote_file, tmp)
            return finish_download(remote_file, tmp, final, spec, safe, sha256)
        finally:
            tmp.unlink(missing_ok=True)  # after success it has been renamed; after failure it must go
