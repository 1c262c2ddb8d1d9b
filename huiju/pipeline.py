"""One source's daily steps — collect, validate, publish — each idempotent and driven by the ledger.

Steps read what to do from ``ops.loads`` rather than from what an earlier step returned, so a
step run twice, or after a crash, picks up exactly the batches still waiting for it.
"""

from __future__ import annotations

import fnmatch
import logging
from datetime import date
from pathlib import Path

from huiju.landing import LandResult, land_file
from huiju.ledger import loads_with_status
from huiju.registry import Registry, Source, load_registry
from huiju.settings import get_settings
from huiju.validation import ValidationResult, publish_load, validate_load
from huiju.warehouse import connect

log = logging.getLogger(__name__)


class CollectionError(RuntimeError):
    """Some delivered batches could not be landed; each is recorded as failed in the ledger."""


def inbox_for(source: Source) -> Path:
    """The inbox folder a source's files are dropped into: ``var/inbox/<source id>/``."""
    return get_settings().inbox_dir / source.id


def pending_files(source: Source) -> list[Path]:
    """Files in the source's inbox matching its pattern, in a stable order (name)."""
    folder = inbox_for(source)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and fnmatch.fnmatch(p.name, source.file_pattern))


def collect(source_id: str, data_date: date | None = None, registry: Registry | None = None) -> list[LandResult]:
    """Land every file waiting in the source's inbox; raise after all were tried if any failed."""
    registry = registry or load_registry()
    source = registry.source(source_id)
    if source.channel != "inbox":
        raise NotImplementedError(f"{source_id}: channel {source.channel!r} is not collected here")
    results: list[LandResult] = []
    with connect() as conn:
        for path in pending_files(source):
            results.append(land_file(conn, registry, source, path, data_date=data_date))
    failed = [r for r in results if r.outcome == "failed"]
    if failed:
        raise CollectionError("; ".join(r.error or r.reference for r in failed))
    return results


def validate_pending(source_id: str, registry: Registry | None = None) -> list[ValidationResult]:
    """Validate the source's batches that are landed but not yet validated."""
    registry = registry or load_registry()
    with connect() as conn:
        return [validate_load(conn, registry, load_id) for load_id in loads_with_status(conn, source_id, "received")]


def publish_validated(source_id: str) -> list[str]:
    """Publish the source's validated batches; return the ids published now."""
    with connect() as conn:
        return [load_id for load_id in loads_with_status(conn, source_id, "validated") if publish_load(conn, load_id)]
