"""Remote file names are untrusted: decoded strictly, checked, and never allowed to leave the destination."""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

from .model import MAX_NAME_BYTES, Incomplete, UndecodableName, UnsafeName


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


def listed_name(raw: bytes, encoding: str) -> str | Incomplete:
    """A listed name decoded strictly with the server's ``encoding``, or the ``undecodable_name`` problem to report."""
    try:
        return decode_name(raw, encoding)
    except UndecodableName as exc:
        return Incomplete(raw.decode("ascii", "backslashreplace"), "undecodable_name", str(exc))
