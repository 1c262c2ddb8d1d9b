"""Which listed files are complete (marker or rename rule), which are still arriving, which are stale."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from .model import Completeness, Incomplete, IncompleteReason, PollResult, RemoteFile, UnsafeName
from .names import check_remote_name


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
