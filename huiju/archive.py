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

import base64
import datetime as dt
import gzip
import hashlib
import json
import os
import queue
import shutil
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

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


#: Folder of the archive that holds each load's replay manifest (``loads/<source id>/<load id>.json``).
MANIFESTS = "loads"


def manifest_relpath(source_id: str, load_id: str) -> str:
    """Where the replay manifest of a load lives, relative to the archive root."""
    return f"{MANIFESTS}/{source_id}/{load_id}.json"


def archive_manifest(entry: dict, root: Path | None = None) -> str:
    """Store a load's replay manifest (once) beside the originals; return its relative path.

    The manifest says how the load was landed — its source, reference, where its original is,
    the arguments its landing took — so :mod:`huiju.replay` can land it again from the archive
    alone, into a warehouse that lost it. Written once: the first landing's description is the
    one a replay repeats (a retry of the same load describes the same thing).
    """
    rel = manifest_relpath(entry["source_id"], entry["load_id"])
    if os.path.exists(os.path.join(root or get_settings().archive_dir, rel)):
        return rel
    return _store(json.dumps(entry, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8"), rel, root)


def archive_pages_manifest(entry: dict, root: Path | None = None) -> str:
    """Store the replay manifest of a group of pages landed together (a web-service run's group, one pack).

    ``entry`` holds what the pages share (``source_id``, ``received_at``, …) and ``pages``, one
    description per page (its ``load_id``, ``reference``, ``archive_path`` in the pack, …). One file
    per group, as one pack per group: a file per page would cost what packs save (see the module
    docstring). Named by its content, so the same group described again is the same file.
    :func:`read_manifests` gives each page as a manifest of its own.
    """
    content = json.dumps(entry, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")
    name = f"pages-{hashlib.sha256(content).hexdigest()[:32]}"
    return _store(content, manifest_relpath(entry["source_id"], name), root)


def read_manifests(source_id: str | None = None, root: Path | None = None) -> list[dict]:
    """Every stored replay manifest (of one source, or all), one per load, in no particular order.

    A group of pages (:func:`archive_pages_manifest`) gives one per page; a load described more than
    once (a page fetched again by a rerun, already landed) keeps its first landing's description.
    """
    base = (root or get_settings().archive_dir) / MANIFESTS
    folders = [base / source_id] if source_id else (sorted(p for p in base.iterdir() if p.is_dir())
                                                    if base.is_dir() else [])
    found: dict[str, dict] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            stored = json.loads(path.read_bytes())
            shared = {key: value for key, value in stored.items() if key != "pages"}
            for manifest in ([{**shared, **page} for page in stored["pages"]] if "pages" in stored else [stored]):
                first = found.get(manifest["load_id"])
                if first is None or manifest["received_at"] < first["received_at"]:
                    found[manifest["load_id"]] = manifest
    return list(found.values())


#: The first bytes of a rows archive (after decompression): the format, then its kind and a newline.
ROWS_MAGIC = b"huiju-rows/1 "


def rows_archive(kind: str, body: bytes) -> bytes:
    """A batch read from a database as one compressed original: ``kind`` says what ``body`` holds.

    ``records``: JSON lines, one record (an object) per line, values as landing renders them;
    ``copy``: the COPY text lines landing writes (``_row_no``, ``_extra``, the mapped fields).
    gzip at its fastest level with no timestamp, so the same rows make the same bytes (and the
    same content address) on every run.
    """
    return gzip.compress(ROWS_MAGIC + kind.encode("ascii") + b"\n" + body, compresslevel=1, mtime=0)


class RowsArchiveWriter:
    """:func:`rows_archive` made while the rows stream by: the same bytes, compressed by a thread of its own.

    ``write`` each chunk as it is landed, then ``finish`` for the archive. zlib releases the GIL while it
    compresses, so an extract is compressed while the warehouse's ``COPY`` takes it instead of after it
    (``frontdb_postgres_1m``: compressing a million rows whole took 0.8 s of the landing's 8.6 s).
    Fed without intermediate flushes, deflate's output does not depend on how its input was cut, so the
    archive (and its content address) is the same as ``rows_archive(kind, b"".join(chunks))``.
    """

    def __init__(self, kind: str) -> None:
        self._compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip framing, level 1, mtime 0: as rows_archive
        self._parts = [self._compressor.compress(ROWS_MAGIC + kind.encode("ascii") + b"\n")]
        self._pending: queue.Queue[bytes | None] = queue.Queue(maxsize=64)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rows-archive", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        ended = False
        try:
            while (chunk := self._pending.get()) is not None:
                self._parts.append(self._compressor.compress(chunk))
            ended = True
            self._parts.append(self._compressor.flush())
        except BaseException as exc:  # handed to finish(), in the landing's thread
            self._failure = exc
            # Keep taking chunks to the end: a write must never wait on a full queue nobody reads.
            while not ended:
                ended = self._pending.get() is None

    def write(self, chunk: bytes) -> None:
        """Take the next chunk of the rows (in order)."""
        self._pending.put(chunk)

    def finish(self) -> bytes:
        """The compressed archive of every chunk written."""
        self._pending.put(None)
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        return b"".join(self._parts)

    def close(self) -> None:
        """Stop the thread without an archive (the landing failed or the batch was already landed)."""
        if self._thread.is_alive():
            self._pending.put(None)
            self._thread.join()


def read_rows_archive(payload: bytes) -> tuple[str, bytes] | None:
    """``(kind, body)`` of a rows archive made by :func:`rows_archive`, or None for any other original."""
    if not payload.startswith(b"\x1f\x8b"):
        return None
    content = gzip.decompress(payload)
    if not content.startswith(ROWS_MAGIC):
        return None
    head, _, body = content.partition(b"\n")
    return head[len(ROWS_MAGIC):].decode("ascii"), body


#: Types a records archive keeps beside JSON's own, each as ``{"~": name, "v": text}``.
_TYPED: dict[str, tuple[type, Callable[[Any], str], Callable[[str], Any]]] = {
    "datetime": (dt.datetime, dt.datetime.isoformat, dt.datetime.fromisoformat),
    "date": (dt.date, dt.date.isoformat, dt.date.fromisoformat),
    "time": (dt.time, dt.time.isoformat, dt.time.fromisoformat),
    "decimal": (Decimal, str, Decimal),
    "bytes": (bytes, lambda value: base64.b64encode(value).decode("ascii"), base64.b64decode),
}


def records_text(records: Iterable[Mapping[str, Any]]) -> bytes:
    """Records as JSON lines, each value kept with its type (a date stays a date), for a records archive.

    Values JSON has no type for (dates, times, decimals, bytes) are written as ``{"~": type, "v":
    text}`` and come back as they were (:func:`records_of_text`), so a replay lands, renders and
    screens exactly the values first read. Any other type is kept as its ``str``.
    """
    def typed(value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | str | dict | list):
            return value
        for name, (kind, write, _) in _TYPED.items():
            if isinstance(value, kind):
                return {"~": name, "v": write(value)}
        return str(value)

    return "\n".join(json.dumps({k: typed(v) for k, v in record.items()}, ensure_ascii=False)
                     for record in records).encode("utf-8")


def records_of_text(text: bytes) -> list[dict[str, Any]]:
    """The records :func:`records_text` wrote, every value of its first type again."""
    def value(item: Any) -> Any:
        if isinstance(item, dict) and item.keys() == {"~", "v"} and item["~"] in _TYPED:
            return _TYPED[item["~"]][2](item["v"])
        return item

    return [{k: value(v) for k, v in json.loads(line).items()} for line in text.split(b"\n") if line]
