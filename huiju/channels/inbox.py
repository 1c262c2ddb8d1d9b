"""The inbox channel: files a department (or a steward) drops in ``var/inbox/<source id>/``."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING

from huiju.landing import LandResult, land_file
from huiju.settings import get_settings

if TYPE_CHECKING:
    from huiju.channels import CollectContext
    from huiju.registry import Source


def inbox_for(source: Source) -> Path:
    """The inbox folder of a source: ``var/inbox/<source id>/``."""
    return get_settings().inbox_dir / source.id


def pending_files(source: Source) -> list[Path]:
    """Files in the source's inbox matching its pattern, in a stable order (name)."""
    folder = inbox_for(source)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and fnmatch.fnmatch(p.name, source.file_pattern))


def collect(ctx: CollectContext) -> list[LandResult]:
    """Land every file waiting in the inbox (files already landed are recognised by content)."""
    return [land_file(ctx.conn, ctx.registry, ctx.source, path, data_date=ctx.data_date)
            for path in pending_files(ctx.source)]
