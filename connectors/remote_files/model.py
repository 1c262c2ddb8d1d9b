"""The file-drop vocabulary: limits, errors, and the records of remote files, polls and downloads."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

#: What the package re-exports (``huiju_connectors.remote_files``); DEFAULT_MAX_DOWNLOAD_BYTES is the
#: base class's default, not part of the vocabulary a caller names.
__all__ = [
    "DEFAULT_MARKER_SUFFIXES",
    "DEFAULT_TEMP_PATTERNS",
    "MAX_MARKER_BYTES",
    "MAX_NAME_BYTES",
    "Completeness",
    "FetchedFile",
    "Incomplete",
    "MarkerMismatch",
    "MarkerSpec",
    "PollResult",
    "RemoteFile",
    "RemoteFileError",
    "TooLarge",
    "TransferFailed",
    "UndecodableName",
    "UnsafeName",
]

#: Marker files announcing that ``<name>`` is complete: ``<name>.done`` or ``<name>.ok``.
DEFAULT_MARKER_SUFFIXES: tuple[str, ...] = (".done", ".ok")

#: Names uploading clients use while a transfer is in progress (FileZilla/WinSCP ``.filepart``,
#: browsers ``.crdownload``, hand-made ``.tmp``/``.part``, dot-prefixed names such as ``.~name``,
#: and Office lock files ``~$name``). Such files are never data.
DEFAULT_TEMP_PATTERNS: tuple[str, ...] = (
    "*.tmp",
    "*.part",
    "*.partial",
    "*.filepart",
    "*.crdownload",
    ".*",
    "~$*",
)

#: Longest file name (in UTF-8 bytes) most local filesystems accept.
MAX_NAME_BYTES = 255

_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
# Markers are tiny; a "marker" larger than this is not one and is not read into memory.
MAX_MARKER_BYTES = 64 * 1024


# --------------------------------------------------------------------------------------------- errors


class RemoteFileError(Exception):
    """Base class of the file-drop connectors' errors; the message names the file."""


class MarkerMismatch(RemoteFileError):
    """The downloaded file does not match what its marker announces (size or sha256).

    The core holds the file and reports ``reason`` to the department.
    """

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


class UnsafeName(RemoteFileError):
    """A remote name that could escape the landing directory (``../``, ``/``, ``\\``, NUL, control chars)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"unsafe remote file name {name!r}: {reason}")


class UndecodableName(RemoteFileError):
    """A listed name whose bytes are not valid in the server's configured encoding."""

    def __init__(self, raw: bytes, encoding: str) -> None:
        self.raw = raw
        self.encoding = encoding
        super().__init__(
            f"remote file name {raw!r} cannot be decoded as {encoding}; "
            "check the source's configured encoding (e.g. encoding='gbk')"
        )


class TransferFailed(RemoteFileError):
    """A download failed after every retry; no partial file was left in the destination."""


class TooLarge(TransferFailed):
    """A file larger than the drop's ``max_bytes`` (announced or received); nothing of it is kept."""

    #: Not retried: the same file is as large on the next attempt.
    retryable = False


#: Bytes one download may take at most unless the source says otherwise (``max_download_mb``).
DEFAULT_MAX_DOWNLOAD_BYTES = 2 * 1024**3


# --------------------------------------------------------------------------------------------- models


@dataclass(frozen=True)
class RemoteFile:
    """One data file listed on a server.

    ``mtime`` is timezone-aware UTC (MLSD ``modify`` and SFTP ``mtime`` are both UTC).
    ``size`` is ``None`` only when the server did not report it. ``marker`` is the name of
    the marker file that made it complete (``marker`` rule), so the download can read and
    enforce the marker's ``size=``/``sha256=``.
    """

    name: str
    size: int | None
    mtime: datetime
    marker: str | None = None

    @property
    def sort_key(self) -> tuple[datetime, str]:
        """Stable processing order: oldest first, then by name."""
        return (self.mtime, self.name)


@dataclass(frozen=True)
class FetchedFile:
    """A file downloaded, verified and moved into place in the destination directory."""

    remote_name: str
    safe_name: str
    local_path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class MarkerSpec:
    """What a marker file announces about its data file; both fields optional."""

    size: int | None = None
    sha256: str | None = None


IncompleteReason = Literal[
    "awaiting_marker",  # data without its marker, still inside the grace period
    "stale_incomplete",  # data without marker (or a temp upload) older than the grace period
    "uploading",  # a temporary upload name (rename rule), inside the grace period
    "orphan_marker",  # a marker whose data file is not there
    "unsafe_name",  # a name that could escape the landing directory
    "undecodable_name",  # a name not valid in the configured encoding
]


@dataclass(frozen=True)
class Incomplete:
    """A listed entry that is not (yet) a candidate, and why; ``detail`` is human-readable."""

    name: str
    reason: IncompleteReason
    detail: str
    remote: RemoteFile | None = None


@dataclass(frozen=True)
class Completeness:
    """How a source tells the platform a file is complete.

    ``marker``: ``<name>.done`` / ``<name>.ok`` must exist next to the data file.
    ``rename``: the department uploads under a temporary name (``*.tmp``, ``*.part``, ``.~name`` …)
    and renames when done; only names not matching ``temp_patterns`` are data.

    A file whose size merely stopped changing is never considered complete: a stalled upload
    looks exactly like that. ``grace`` is how long an incomplete file may wait before it is
    reported as ``stale_incomplete`` so the core can tell the department.
    """

    mode: Literal["marker", "rename"] = "marker"
    grace: timedelta = timedelta(hours=2)
    marker_suffixes: tuple[str, ...] = DEFAULT_MARKER_SUFFIXES
    temp_patterns: tuple[str, ...] = DEFAULT_TEMP_PATTERNS

    def __post_init__(self) -> None:
        if self.mode not in ("marker", "rename"):
            raise ValueError(f"completeness mode must be 'marker' or 'rename', not {self.mode!r}")
        if self.mode == "marker" and not self.marker_suffixes:
            raise ValueError("the marker rule needs at least one marker suffix")


@dataclass
class PollResult:
    """What one poll found.

    ``candidates``: at most ``batch_size`` complete files in stable order (mtime, then name).
    ``remaining``: how many further complete files are waiting beyond this batch.
    ``waiting``: incomplete but inside the grace period (nothing to do yet).
    ``stale_incomplete``: incomplete longer than the grace period: notify the department.
    ``rejected``: unsafe or undecodable names and orphan markers: never ingested, report them.
    """

    candidates: list[RemoteFile] = field(default_factory=list)
    remaining: int = 0
    waiting: list[Incomplete] = field(default_factory=list)
    stale_incomplete: list[Incomplete] = field(default_factory=list)
    rejected: list[Incomplete] = field(default_factory=list)

    @property
    def incompletes(self) -> list[Incomplete]:
        """Everything that was listed but is not a candidate."""
        return [*self.waiting, *self.stale_incomplete, *self.rejected]
