"""The inbox channel: files a department (or a steward) drops in ``var/inbox/<source id>/``.

Inbox files pass the same guards as every other file channel (:func:`huiju.channels.filedrop.land_delivered`:
the content decides what a file is, archives are unpacked within limits, a macro workbook or a web
page saved as ``.xlsx`` is refused). A symbolic link is refused without being followed: it could
make the platform land another source's file, or any file the platform's account can read.
"""

from __future__ import annotations

import fnmatch
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from huiju.channels.filedrop import land_delivered
from huiju.landing import LandResult, record_failed
from huiju.ledger import make_content_id
from huiju.settings import get_settings

if TYPE_CHECKING:
    from huiju.channels import CollectContext
    from huiju.registry import Source

SYMLINK_REFUSED = "收件箱中的文件是符号链接（快捷方式），平台不跟随链接读取文件；请直接放入数据文件本身"


def inbox_for(source: Source) -> Path:
    """The inbox folder of a source: ``var/inbox/<source id>/``."""
    return get_settings().inbox_dir / source.id


def pending_files(source: Source) -> list[Path]:
    """Entries in the source's inbox matching its pattern (files and symbolic links), in a stable order (name)."""
    folder = inbox_for(source)
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(p for p in folder.iterdir()
                  if (p.is_symlink() or p.is_file()) and not p.name.startswith(".")
                  and fnmatch.fnmatch(p.name, source.file_pattern))


def collect(ctx: CollectContext) -> list[LandResult]:
    """Land every file waiting in the inbox (files already landed are recognised by content)."""
    work_root = get_settings().var / "work" / "inbox"
    work_root.mkdir(parents=True, exist_ok=True)
    results: list[LandResult] = []
    with tempfile.TemporaryDirectory(prefix=f"{ctx.source.id}-", dir=work_root) as tmp:
        for path in pending_files(ctx.source):
            if path.is_symlink():
                results.append(record_failed(
                    ctx.conn, ctx.registry, ctx.source, reference=path.name,
                    content_id=make_content_id("symlink", path.name), data_date=ctx.data_date,
                    error=f"{ctx.source.id}: {path.name}: {SYMLINK_REFUSED}"))
                continue
            results.extend(land_delivered(ctx, path, path.name, Path(tmp)))
    return results
