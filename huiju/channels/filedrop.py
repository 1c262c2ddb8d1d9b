"""What the FTP and SFTP channels share: the drop settings, the collect loop, guards and bookkeeping.

A file-drop collect run, in one task (the download and its landing never cross tasks, so no
task relies on another's local disk):

1. poll the drop directory: complete files only (marker or rename rule, see
   :mod:`huiju_connectors.remote_files`), at most ``max_files`` in a stable order, skipping
   what ``ops.remote_files`` says was already taken (same name, size and mtime);
2. record what the department must hear about in ``ops.remote_file_events``: uploads still
   incomplete after the grace period, markers contradicting their file, unsafe or undecodable
   names, markers without data (and, as the run goes on, files refused by their content,
   downloads that failed after every retry, and an SSH host key that is not the pinned one):
   each a row with a Chinese notice naming the file, ``notified_at`` null until the notifier
   has sent it;
3. download each candidate into a temporary directory under ``var/`` (verified against its
   marker, promoted atomically), check it by content (macro-enabled, legacy and HTML-disguised
   workbooks, zip bombs, hostile XML are refused as failed loads with the reason), unpack zip/gzip archives
   safely (each member its own batch, reference ``archive.zip!member.csv``) and land it;
4. remember the file in ``ops.remote_files`` and, with ``after_success: move``, move it and its
   marker to the processed folder.
"""

from __future__ import annotations

import logging
import posixpath
import shutil
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from huiju_connectors.files import digest_file
from huiju_connectors.guards import UnsafeArchive, open_gzip, safe_extract, sniff_kind
from huiju_connectors.remote_files import (
    Completeness,
    DropSource,
    Incomplete,
    MarkerMismatch,
    RemoteFile,
    RemoteFileError,
)

from huiju.archive import archive_file
from huiju.channel_settings import DropSettings
from huiju.channels.file_checks import refusal_reason, unsafe_archive_reason
from huiju.landing import LandResult, land_file, record_failed
from huiju.masking import mask_text
from huiju.private_files import private_dir
from huiju.settings import get_settings

if TYPE_CHECKING:
    import psycopg

    from huiju.channels import CollectContext, ConnectionInfo

log = logging.getLogger(__name__)

# A nested archive (a zip inside a zip) is not something departments send; refusing it also
# bounds the work a hostile file can cause.
_MAX_ARCHIVE_DEPTH = 1


class ChannelSetupError(RuntimeError):
    """The source cannot be reached as configured (no Connection, no pinned key …)."""


# Department-facing notices (Chinese): what happened and what to do.
_NOTICES: dict[str, str] = {
    "stale_incomplete": "文件“{name}”上传未完成：超过{grace}分钟仍未收到完成标记（或仍是临时文件名），平台未接收。"
                        "请重新完整上传该文件，上传完毕后再写入完成标记或改为正式文件名。",
    "marker_mismatch": "文件“{name}”与其完成标记不一致（大小或校验值不符），平台暂不接收。"
                       "请核对文件是否完整，重新上传文件并重写完成标记。",
    "unsafe_name": "文件名“{name}”含有路径符号或控制字符，平台拒绝接收。请改用普通文件名重新上传。",
    "undecodable_name": "文件名“{name}”无法按约定的编码识别，平台未接收。请改用规范的文件名重新上传，"
                        "或与平台确认服务器的文件名编码。",
    "orphan_marker": "收到完成标记“{name}”，但对应的数据文件不存在。请补传数据文件。",
    "refused_file": "文件“{name}”已下载但未能入库，平台拒收：{detail}。请按要求修正后重新上传。",
    "transfer_failed": "文件“{name}”多次下载均未成功（连接中断或超时），平台未接收，将在下次采集时重试；"
                       "如此提示反复出现，请检查服务器和网络。",
    "host_key_mismatch": "服务器“{name}”的SSH主机密钥与平台登记的不一致（或未登记），平台已拒绝连接，未取任何文件。"
                         "如贵单位确实更换了服务器或密钥，请通过电话等其他渠道向平台确认新的密钥指纹。",
}


def _notice(kind: str, name: str, grace_minutes: float, detail: str = "") -> str:
    return _NOTICES[kind].format(name=name, grace=f"{grace_minutes:g}", detail=detail.rstrip("。；;. "))


def record_event(ctx: CollectContext, item: Incomplete, kind: str, detail: str) -> None:
    """Record a problem the department must hear about, once per file version and kind."""
    remote = item.remote
    size = remote.size if remote is not None and remote.size is not None else -1
    mtime = remote.mtime if remote is not None else datetime.fromtimestamp(0, UTC)
    with ctx.conn.transaction():
        ctx.conn.execute(
            "insert into ops.remote_file_events (source_id, department, remote_name, kind, detail, notice,"
            " remote_size, remote_mtime) values (%s, %s, %s, %s, %s, %s, %s, %s)"
            " on conflict (source_id, remote_name, kind, remote_size, remote_mtime)"
            " do update set last_seen = now(), detail = excluded.detail",
            (ctx.source.id, ctx.source.department, item.name, kind, mask_text(detail),
             mask_text(_notice(kind, item.name, ctx.settings.grace_minutes, detail)), size, mtime),
        )
    log.warning("%s: %s: %s (%s) — recorded for the department", ctx.source.id, mask_text(item.name), kind,
                mask_text(detail))


def _reason(result: LandResult, source_id: str) -> str:
    """A failed landing's reason without the ``source: reference:`` prefix the ledger keeps."""
    error = result.error or "无法读取"
    for prefix in (f"{source_id}: {result.reference}: ", f"{source_id}: "):
        if error.startswith(prefix):
            return error[len(prefix):]
    return error


def _taken(conn: psycopg.Connection, source_id: str) -> set[tuple[str, int, datetime]]:
    with conn.transaction():
        rows = conn.execute("select remote_name, size, mtime from ops.remote_files where source_id = %s",
                            (source_id,)).fetchall()
    return {(name, size, mtime) for name, size, mtime in rows}


def _key(remote: RemoteFile) -> tuple[str, int, datetime]:
    return (remote.name, remote.size if remote.size is not None else -1, remote.mtime)


def _remember(conn: psycopg.Connection, source_id: str, remote: RemoteFile, sha256: str, archive_path: str | None,
              results: list[LandResult]) -> None:
    outcomes = {r.outcome for r in results}
    outcome = outcomes.pop() if len(outcomes) == 1 else "mixed"
    with conn.transaction():
        conn.execute(
            "insert into ops.remote_files (source_id, remote_name, size, mtime, sha256, archive_path, outcome,"
            " load_ids) values (%s, %s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
            (source_id, *_key(remote), sha256, archive_path, outcome, [r.load_id for r in results if r.load_id]),
        )


def _fail(ctx: CollectContext, path: Path, reference: str, reason: str) -> LandResult:
    """Record a delivered file the platform refuses (by content) as a failed load, with the reason."""
    digest = digest_file(path)
    return record_failed(ctx.conn, ctx.registry, ctx.source, reference=reference, content_id=digest.sha256,
                         error=f"{ctx.source.id}: {reference}: {reason}", data_date=ctx.data_date,
                         size=digest.bytes, archive_path=archive_file(path, digest.sha256))


def land_delivered(ctx: CollectContext, path: Path, reference: str, work: Path, depth: int = 0) -> list[LandResult]:
    """Check a delivered file by its content and land it (each member of an archive as its own batch)."""
    kind = sniff_kind(path)
    if kind in ("zip", "gzip"):
        if depth >= _MAX_ARCHIVE_DEPTH:
            return [_fail(ctx, path, reference, "压缩包内又含压缩包，平台不接收多层压缩；请直接压缩数据文件")]
        return _land_archive(ctx, path, reference, work, depth, kind)
    reason = refusal_reason(path, ctx.source.format, kind=kind)
    if reason is not None:
        return [_fail(ctx, path, reference, reason)]
    return [land_file(ctx.conn, ctx.registry, ctx.source, path, reference=reference, data_date=ctx.data_date)]


def _land_archive(ctx: CollectContext, path: Path, reference: str, work: Path, depth: int,
                  kind: str) -> list[LandResult]:
    """Unpack a zip/gzip safely (limits enforced while streaming) and land each data member."""
    target = Path(tempfile.mkdtemp(prefix="unpacked-", dir=work))
    try:
        try:
            if kind == "zip":
                members = sorted(safe_extract(path, target), key=lambda p: p.relative_to(target).as_posix())
            else:
                inner = path.name[:-3] if path.name.endswith(".gz") else f"{path.name}.data"
                members = [target / inner]
                with open_gzip(path) as stream, members[0].open("wb") as out:
                    shutil.copyfileobj(stream, out, 1 << 20)
        except UnsafeArchive as exc:
            return [_fail(ctx, path, reference, unsafe_archive_reason(exc))]
        results: list[LandResult] = []
        for member in members:
            rel = member.relative_to(target).as_posix()
            base = posixpath.basename(rel)
            if rel.startswith("__MACOSX/") or base.startswith((".", "~$")):
                continue  # packing debris (macOS resource forks, Office lock files), not data
            results.extend(land_delivered(ctx, member, f"{reference}!{rel}", work, depth + 1))
        if not results:
            results.append(_fail(ctx, path, reference, "压缩包中没有数据文件"))
        return results
    finally:
        shutil.rmtree(target, ignore_errors=True)


def collect_drop(ctx: CollectContext, open_drop: Callable[[DropSettings, ConnectionInfo],
                                                           AbstractContextManager[DropSource]]) -> list[LandResult]:
    """Poll the source's drop, land every complete new file, record what the department must fix."""
    settings: DropSettings = ctx.settings
    source = ctx.source
    if ctx.connection is None:
        raise ChannelSetupError(f"{source.id}: channel {source.channel} needs an Airflow Connection "
                                f"(set `connection:` in the source's config and define it in Airflow)")
    completeness = Completeness(mode=settings.completeness, grace=settings.grace,
                                marker_suffixes=settings.marker_suffixes)
    taken = _taken(ctx.conn, source.id)
    results: list[LandResult] = []
    work_root = private_dir(get_settings().var / "work" / "filedrop")  # downloads: 0700 (mkdtemp) in 0700
    with open_drop(settings, ctx.connection) as drop:
        poll = drop.poll(source.file_pattern, completeness=completeness, batch_size=settings.max_files,
                         skip=lambda remote: _key(remote) in taken)
        for item in poll.stale_incomplete:
            record_event(ctx, item, "stale_incomplete", item.detail)
        for item in poll.rejected:
            record_event(ctx, item, item.reason, item.detail)
        with tempfile.TemporaryDirectory(prefix=f"{source.id}-", dir=work_root) as tmp:
            work = Path(tmp)
            downloads = work / "download"
            downloads.mkdir()
            for remote in poll.candidates:
                try:
                    fetched = drop.download(remote, downloads)
                except MarkerMismatch as exc:
                    # Held on the server (not moved, not landed) until the department fixes it.
                    record_event(ctx, Incomplete(remote.name, "awaiting_marker", exc.reason, remote),
                                 "marker_mismatch", exc.reason)
                    continue
                except RemoteFileError as exc:
                    # A transfer that failed after its retries: the task fails and Airflow retries it.
                    results.append(LandResult(source.id, remote.name, "", "failed", error=f"{source.id}: {exc}"))
                    record_event(ctx, Incomplete(remote.name, "awaiting_marker", str(exc), remote),
                                 "transfer_failed", str(exc))
                    continue
                try:
                    landed = land_delivered(ctx, fetched.local_path, remote.name, work)
                    # A plain file is archived by its landing; an archive's members are, so keep
                    # the archive as delivered too: the lineage starts at what the department sent.
                    archive_path = archive_file(fetched.local_path, fetched.sha256) \
                        if any(r.reference != remote.name for r in landed) else None
                finally:
                    fetched.local_path.unlink(missing_ok=True)
                _remember(ctx.conn, source.id, remote, fetched.sha256, archive_path, landed)
                for refused in (r for r in landed if r.outcome == "failed"):
                    reason = _reason(refused, source.id)
                    record_event(ctx, Incomplete(refused.reference, "awaiting_marker", reason, remote),
                                 "refused_file", reason)
                results.extend(landed)
                if settings.after_success == "move" and all(r.outcome != "failed" for r in landed):
                    drop.move_to(remote, settings.processed_dir)
        if poll.remaining:
            log.info("%s: %d more complete files wait for the next run (max_files %d)", source.id,
                     poll.remaining, settings.max_files)
    return results
