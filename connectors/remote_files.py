"""What the file-drop connectors (FTP, FTPS, SFTP) share: the file model, completeness, safe names.

Departments drop files on servers they control, so everything a listing says is untrusted:
names may try to escape the landing directory, sizes may change, a file may still be uploading.
This module holds the protocol-independent rules so FTP and SFTP behave identically:

* :func:`evaluate` decides which listed files are complete (``marker`` or ``rename`` rule),
  which are still arriving, and which are stale (waiting longer than the grace period);
* :func:`parse_marker` / :func:`verify_against_marker` read and enforce ``size=`` / ``sha256=``
  lines (or a JSON object) in a ``.done`` / ``.ok`` marker;
* :func:`safe_local_name` and :func:`local_target` make sure nothing is ever written outside
  the destination directory;
* :func:`promote` moves a verified temporary download into place atomically.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import re
import unicodedata
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from huiju_connectors.files import digest_file
from huiju_connectors.retry import GaveUp, RetryPolicy

__all__ = [
    "DEFAULT_MARKER_SUFFIXES",
    "DEFAULT_TEMP_PATTERNS",
    "DROP_RETRY",
    "MAX_MARKER_BYTES",
    "MAX_NAME_BYTES",
    "Completeness",
    "DropSource",
    "FetchedFile",
    "Incomplete",
    "MarkerMismatch",
    "MarkerSpec",
    "PollResult",
    "RemoteFile",
    "RemoteFileError",
    "TransferFailed",
    "UndecodableName",
    "UnsafeName",
    "check_remote_name",
    "decode_name",
    "evaluate",
    "finish_download",
    "listed_name",
    "local_target",
    "parse_marker",
    "promote",
    "resume_hasher",
    "safe_local_name",
    "temp_download_path",
    "verify_against_marker",
]

log = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------------------------- names


def decode_name(raw: bytes, encoding: str) -> str:
    """Decode a listed name strictly; a name that does not decode raises :class:`UndecodableName`.

    Replacing bad bytes would silently land a file under a name the department never used (and
    two different names could collapse into one), so it is refused instead.
    """
    try:
        return raw.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise UndecodableName(raw, encoding) from None


def check_remote_name(name: str) -> None:
    """Raise :class:`UnsafeName` unless ``name`` is a plain file name (no path, no control chars).

    Applied to listing entries before they become candidates, so the platform never asks the
    server for ``../x`` either (a server-side traversal is the department's problem, but we do
    not take part in it).
    """
    if name in ("", ".", ".."):
        raise UnsafeName(name, "empty or a directory reference")
    if "\x00" in name:
        raise UnsafeName(name, "contains a NUL byte")
    if "/" in name or "\\" in name:
        raise UnsafeName(name, "contains a path separator")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        # Cf catches bidi overrides (U+202E) that disguise extensions in reports.
        raise UnsafeName(name, "contains control or invisible formatting characters")


def safe_local_name(remote_name: str) -> str:
    """The local file name to land ``remote_name`` under.

    Rejects (:class:`UnsafeName`) anything that could address another directory: ``..``, absolute
    paths, ``/`` or ``\\`` separators, NUL and other control characters. Neutralises only what is
    harmless but unwritable: names longer than 255 UTF-8 bytes are shortened, keeping the
    extension and adding 8 hex digits of the full name's sha256 so distinct names stay distinct
    (GBK names from Windows servers grow by half when re-encoded as UTF-8).
    """
    check_remote_name(remote_name)
    name = unicodedata.normalize("NFC", remote_name)
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext.encode("utf-8")) > 16:
        stem, ext = name, ""
    suffix = "~" + hashlib.sha256(remote_name.encode("utf-8")).hexdigest()[:8] + (f".{ext}" if ext else "")
    budget = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    # Cut on a character boundary, never in the middle of a multi-byte sequence.
    shortened = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return shortened + suffix


def local_target(dest_dir: Path, safe_name: str) -> Path:
    """``dest_dir / safe_name``, verified (after resolving symlinks) to lie inside ``dest_dir``."""
    base = dest_dir.resolve()
    target = (base / safe_name).resolve()
    if target.parent != base or not target.is_relative_to(base):
        raise UnsafeName(safe_name, f"would be written outside {base}")
    return target


def temp_download_path(dest_dir: Path, safe_name: str, token: str) -> Path:
    """A hidden temporary name next to the final file (same filesystem, so ``os.replace`` is atomic)."""
    stem = safe_name.encode("utf-8")[:200].decode("utf-8", errors="ignore")
    return local_target(dest_dir, f".{stem}.{token}.partial")


# --------------------------------------------------------------------------------------------- markers


def parse_marker(name: str, content: bytes) -> MarkerSpec:
    """Read ``size=<n>`` / ``sha256=<hex>`` lines, or a JSON object with ``size``/``sha256`` keys.

    Anything else (an empty marker, free text such as ``OK``) announces completeness only.
    A present but malformed value raises :class:`MarkerMismatch`: the department meant to tell
    us something and we cannot check it.
    """
    text = content.decode("utf-8-sig", errors="replace").strip()
    raw_size: object = None
    raw_sha: object = None
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            raise MarkerMismatch(name, "marker looks like JSON but cannot be parsed") from None
        if not isinstance(obj, dict):
            raise MarkerMismatch(name, "marker JSON is not an object")
        raw_size, raw_sha = obj.get("size"), obj.get("sha256")
    else:
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if not sep:
                key, sep, value = line.partition(":")
            key = key.strip().lower()
            if key == "size":
                raw_size = value.strip()
            elif key == "sha256":
                raw_sha = value.strip()
    size: int | None = None
    if raw_size is not None:
        if isinstance(raw_size, bool) or not (
            isinstance(raw_size, int) or (isinstance(raw_size, str) and raw_size.isdigit())
        ):
            raise MarkerMismatch(name, f"marker size {raw_size!r} is not a non-negative integer")
        size = int(raw_size)
        if size < 0:
            raise MarkerMismatch(name, f"marker size {raw_size!r} is negative")
    sha: str | None = None
    if raw_sha is not None:
        if not isinstance(raw_sha, str) or not _SHA256_RE.match(raw_sha):
            raise MarkerMismatch(name, f"marker sha256 {raw_sha!r} is not 64 hex digits")
        sha = raw_sha.lower()
    return MarkerSpec(size=size, sha256=sha)


def verify_against_marker(name: str, spec: MarkerSpec | None, size: int, sha256: str) -> None:
    """Raise :class:`MarkerMismatch` if the downloaded size/sha256 contradict the marker."""
    if spec is None:
        return
    if spec.size is not None and spec.size != size:
        raise MarkerMismatch(
            name,
            f"size is {size} bytes but its marker announces {spec.size} "
            "(the marker may have been written before the upload finished)",
        )
    if spec.sha256 is not None and spec.sha256 != sha256:
        raise MarkerMismatch(name, f"sha256 is {sha256} but its marker announces {spec.sha256}")


# --------------------------------------------------------------------------------------------- completeness


def _matches_any(name: str, patterns: Iterable[str]) -> bool:
    # fnmatchcase: remote servers are case-sensitive; a local OS's case rules must not leak in.
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _strip_temp(name: str) -> str:
    """The final name a temporary upload name probably becomes (for pattern matching only)."""
    for suffix in (".tmp", ".part", ".partial", ".filepart", ".crdownload"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    for prefix in (".~", "~$", "."):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def evaluate(
    files: Iterable[RemoteFile],
    *,
    pattern: str,
    completeness: Completeness,
    batch_size: int,
    now: datetime | None = None,
    skip: Callable[[RemoteFile], bool] | None = None,
    rejected: Iterable[Incomplete] = (),
) -> PollResult:
    """Apply the completeness rule to one directory listing and pick the next batch.

    ``files`` is every regular file in the directory (markers included). ``pattern`` is an
    fnmatch pattern for data files. ``skip`` lets the core exclude files it already has
    (e.g. by name, size and mtime) when it leaves processed files on the server. ``rejected``
    carries entries the protocol layer already refused (undecodable names).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = now or datetime.now(UTC)
    stale_before = now - completeness.grace
    result = PollResult(rejected=list(rejected))
    by_name: dict[str, RemoteFile] = {}
    for f in files:
        try:
            check_remote_name(f.name)
        except UnsafeName as exc:
            result.rejected.append(Incomplete(f.name, "unsafe_name", exc.reason, f))
            continue
        by_name[f.name] = f

    markers = completeness.marker_suffixes
    complete: list[RemoteFile] = []
    for name, f in by_name.items():
        is_temp = _matches_any(name, completeness.temp_patterns)
        if completeness.mode == "marker" and name.endswith(markers):
            data_name = name[: -len(next(s for s in markers if name.endswith(s)))]
            if data_name not in by_name and fnmatch.fnmatchcase(data_name, pattern):
                result.rejected.append(
                    Incomplete(name, "orphan_marker", f"marker present but {data_name!r} is not", f)
                )
            continue
        if is_temp:
            if completeness.mode == "rename" and fnmatch.fnmatchcase(_strip_temp(name), pattern):
                _add_incomplete(result, f, stale_before, "uploading", "temporary upload name")
            continue
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        if completeness.mode == "marker":
            marker = next((name + s for s in markers if name + s in by_name), None)
            if marker is None:
                _add_incomplete(
                    result, f, stale_before, "awaiting_marker", f"no {' or '.join(name + s for s in markers)}"
                )
                continue
            f = RemoteFile(f.name, f.size, f.mtime, marker=marker)
        if skip is not None and skip(f):
            continue
        complete.append(f)

    complete.sort(key=lambda r: r.sort_key)
    result.candidates = complete[:batch_size]
    result.remaining = max(0, len(complete) - batch_size)
    for bucket in (result.waiting, result.stale_incomplete, result.rejected):
        bucket.sort(key=lambda i: i.name)
    return result


def _add_incomplete(
    result: PollResult, f: RemoteFile, stale_before: datetime, reason: IncompleteReason, detail: str
) -> None:
    if f.mtime < stale_before:
        result.stale_incomplete.append(
            Incomplete(f.name, "stale_incomplete", f"{detail}; unchanged since {f.mtime.isoformat()}", f)
        )
    else:
        result.waiting.append(Incomplete(f.name, reason, detail, f))


# --------------------------------------------------------------------------------------------- local files


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



# --------------------------------------------------------------------------------------------- sources


#: A department's server gets this long to recover: 4 attempts, waits of up to 2, 4, 8 s (full jitter).
DROP_RETRY = RetryPolicy(attempts=4, base_delay=2.0, max_delay=60.0)


def listed_name(raw: bytes, encoding: str) -> str | Incomplete:
    """A listed name decoded strictly with the server's ``encoding``, or the ``undecodable_name`` problem to report."""
    try:
        return decode_name(raw, encoding)
    except UndecodableName as exc:
        return Incomplete(raw.decode("ascii", "backslashreplace"), "undecodable_name", str(exc))


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
                 retry: RetryPolicy | None) -> None:
        "x".encode(encoding)  # fail now, not at the first listing, on a misspelt encoding
        self.host = host
        self.port = port
        self.directory = directory
        self.encoding = encoding
        self.timeout = timeout
        self.retry = retry or DROP_RETRY

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
        spec = self.read_marker(remote_file)
        tmp = temp_download_path(dest, safe, uuid.uuid4().hex[:12])
        try:
            sha256 = self._transfer(remote_file, tmp)
            return finish_download(remote_file, tmp, final, spec, safe, sha256)
        finally:
            tmp.unlink(missing_ok=True)  # after success it has been renamed; after failure it must go
