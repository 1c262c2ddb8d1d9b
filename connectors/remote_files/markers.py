"""Completion markers (``<name>.done`` / ``.ok``): ``size=`` and ``sha256=`` lines (or JSON), read and enforced."""

from __future__ import annotations

import json

from .model import _SHA256_RE, MarkerMismatch, MarkerSpec


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
