"""What the FTP and SFTP simulators share: the department's file placed on the drop the way it uploads.

The source's file for the day is generated (:func:`huiju_demo.generate.generate_submissions`)
and put in the folder the simulated server serves, following the source's completeness rule:
with ``marker`` the data file is written first and then ``<name>.done`` carrying its size and
sha256; with ``rename`` it is uploaded under ``<name>.part`` and renamed when complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from datetime import date
from pathlib import Path

from huiju_demo.generate import SourceSubmission, generate_submissions

from huiju.registry import Registry, Source


def marker_text(path: Path) -> str:
    """A ``.done`` marker announcing ``path``'s size and sha256 (what the platform verifies)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return f"size={path.stat().st_size}\nsha256={digest.hexdigest()}\n"


def prepare_drop(registry: Registry, source: Source, day: date, rows: int,
                 workdir: Path) -> tuple[Path, SourceSubmission]:
    """A fresh server root under ``workdir`` holding the source's file for ``day``; (root, submission)."""
    if source.connection is None:
        raise ValueError(f"source {source.id!r} has no `connection:`; the simulator publishes one under that id")
    root = workdir / source.id / "root"
    staging = workdir / source.id / "staging"
    for folder in (root, staging):
        shutil.rmtree(folder, ignore_errors=True)  # a rerun starts from what the department sends today
        folder.mkdir(parents=True)
    settings = source.channel_settings
    drop = root / settings.directory.strip("/")
    drop.mkdir(parents=True, exist_ok=True)
    (submission,) = generate_submissions(registry, staging, day, rows_per_source=rows, sources=[source.id]).submissions
    assert submission.path is not None
    final = drop / submission.path.name
    if settings.completeness == "rename":
        upload = final.with_name(final.name + ".part")
        shutil.move(submission.path, upload)
        os.replace(upload, final)  # the department's "upload complete" step
    else:
        shutil.move(submission.path, final)
        (drop / (final.name + settings.marker_suffixes[0])).write_text(marker_text(final), encoding="utf-8")
    shutil.rmtree(staging, ignore_errors=True)
    return root, dataclasses.replace(submission, path=final)
