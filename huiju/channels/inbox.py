"""The inbox channel: files a department (or a steward) drops in ``var/inbox/<source id>/``."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from huiju.channels import CollectContext
    from huiju.landing import LandResult
    from huiju.registry import Source


class Settings(BaseModel):
    """Inbox sources need no settings beyond the file ones every file channel has."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def inbox_for(source: Source) -> Path:
    """The inbox folder of a source: ``var/inbox/<source id>/``."""
    from huiju.settings import get_settings

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
    from huiju.landing import land_file

    return [land_file(ctx.conn, ctx.registry, ctx.source, path, data_date=ctx.data_date)
            for path in pending_files(ctx.source)]
