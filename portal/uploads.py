"""Excel文件上传: a department's workbook, checked at the door, then landed like any channel's batch.

At the door (nothing is stored when a file is refused, not even in the archive; only the
audit trail notes the refusal):

- the size cap (the source's ``portal.max_upload_mb``), enforced while the upload is received;
- the content checks every file channel makes (:func:`huiju.channels.file_checks.refusal_reason`): macro
  workbooks, legacy ``.xls``, web pages saved as ``.xlsx``, zip bombs, the wrong format;
- the template: the header must hold every required column of the source, on the row the
  template puts it; a workbook made from another source's template is recognised by its header
  and named, and one whose header sits on another row is told so;
- at least one data row.

Then the batch takes the same path as every other channel's: :func:`huiju.landing.land_file`
(deterministic load id from the content: the same file uploaded twice, or a retried request,
is recognised and never landed twice; archive, ledger row and rows in one transaction, with
the record of who uploaded it), :func:`huiju.validation.validate_load` (quarantine with reasons,
Great Expectations), and the feedback workbook at once when rows were quarantined. The
verdict is ready when the request returns: a few seconds for a normal file. Publishing is
the source's ingest DAG's (its publish task tells the warehouse build there is new data).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO

import psycopg
from huiju_connectors.files import (
    FileFormatError,
    detect_encoding,
    iter_csv_records,
    normalise_header,
    read_csv_layout,
    read_xlsx,
)

from huiju.channels.file_checks import refusal_reason
from huiju.feedback import build_feedback
from huiju.landing import ensure_raw_table, land_file
from huiju.private_files import private_dir
from huiju.registry import Registry, Source
from huiju.validation import ValidationResult, validate_load
from huiju_portal import audit
from huiju_portal.accounts import Account

log = logging.getLogger(__name__)

_HEADER_SEARCH_ROWS = 6  # rows looked at for a header on the wrong row
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


class UploadRefused(Exception):
    """The portal does not take this upload; nothing of it is stored. The message (Chinese) says why and what to do."""


@dataclass(frozen=True)
class UploadResult:
    """What became of an upload that passed the door."""

    outcome: str  # landed | repeat | failed (as land_file reports it; already_landed counts as repeat)
    load_id: str
    message: str  # for the department, in Chinese
    verdict: ValidationResult | None = None
    warnings: list[str] = field(default_factory=list)


def clean_filename(name: str | None) -> str:
    """The name the department gave its file, safe to keep as the batch's reference (no path, no control characters)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = _UNSAFE_NAME.sub("_", unicodedata.normalize("NFC", base)).strip(" .")
    return base[:200] or "upload.xlsx"


def receive_upload(stream: BinaryIO, work_dir: Path, max_bytes: int, suffix: str = "") -> Path:
    """Copy an upload into a temporary file under ``work_dir``, refusing it once it passes ``max_bytes``.

    The caller removes the file when done with it. Nothing of a refused upload is left behind.
    """
    private_dir(work_dir)
    handle = tempfile.NamedTemporaryFile(dir=work_dir, prefix="upload-", suffix=suffix, delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            received = 0
            while chunk := stream.read(1 << 20):
                received += len(chunk)
                if received > max_bytes:
                    raise UploadRefused(too_large_message(max_bytes))
                handle.write(chunk)
        if received == 0:
            raise UploadRefused("没有收到文件内容（文件为空），请选择填写好的文件后再上传")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def too_large_message(max_bytes: int) -> str:
    """The refusal of a file over the cap."""
    return (f"文件超过上传大小上限（{max_bytes / 1024 / 1024:g} MB），平台未接收。"
            "请删除多余的工作表、图片或空行，或分成几个文件分别上传")


def _leading_rows(path: Path, source: Source, wanted: int) -> dict[int, list[str]]:
    """The first ``wanted`` non-empty rows of the file (the source's sheet), by row number, as text."""
    if source.format == "csv":
        layout = read_csv_layout(path, encoding=detect_encoding(path, source.encoding), header_row=1,
                                 delimiter=source.delimiter)
        rows: Iterable[tuple[int, list]] = iter_csv_records(path, layout, source.delimiter)
        first = layout.header
    else:
        sheet = read_xlsx(path, header_row=1, sheet=source.sheet)
        rows, first = sheet.rows, sheet.header
    found = {1: [str(cell or "") for cell in first]}
    for number, cells in rows:
        if len(found) >= wanted:
            break
        if any(cell is not None and str(cell).strip() for cell in cells):
            found[number] = [str(cell or "") for cell in cells]
    return found


def _missing_required(registry: Registry, source: Source, header: list[str]) -> list[str]:
    found = {normalise_header(cell) for cell in header}
    dataset = registry.dataset_of(source)
    return [h for h, name in source.columns.items()
            if dataset.field(name).required and normalise_header(h) not in found]


def _recognise(registry: Registry, source: Source, rows: dict[int, list[str]]) -> str | None:
    """Whose template the file is, when another source's header sits on that source's header row.

    Named by the source's title within the department, by the dataset's elsewhere (a department
    need not know another's sources).
    """
    best: tuple[int, int, str] | None = None
    for other in registry.sources.values():
        header = rows.get(other.header_row)
        if other.id == source.id or header is None or _missing_required(registry, other, header):
            continue
        overlap = len({normalise_header(c) for c in header} & {normalise_header(h) for h in other.columns})
        own = int(other.department == source.department)
        name = other.title if own else f"{registry.dataset_of(other).title}数据"
        if best is None or (own, overlap) > best[:2]:
            best = (own, overlap, name)
    return best[2] if best else None


def template_problem(registry: Registry, source: Source, path: Path) -> str | None:
    """Why the file is not a filled-in template of ``source`` (Chinese, naming what is wrong), or None."""
    try:
        rows = _leading_rows(path, source, max(_HEADER_SEARCH_ROWS, source.header_row + 1))
    except FileFormatError as exc:
        if source.sheet and "no sheet named" in str(exc):
            return f"文件中没有名为「{source.sheet}」的工作表；请使用平台下载的模板填写"
        if "header" not in str(exc) and "ends before" not in str(exc):
            return "文件无法读取（可能已损坏，或不是约定格式的文件）；请用平台下载的模板填写后重新上传"
        rows = {}
    missing = _missing_required(registry, source, rows.get(source.header_row, []))
    if not missing:
        if any(number > source.header_row for number in rows):
            return None
        return "文件中没有数据：表头以下都是空行。请在模板中填写数据后再上传"
    hint = ""
    moved = [number for number, cells in rows.items() if number != source.header_row
             and not _missing_required(registry, source, cells)]
    if moved:
        title_note = "（第1行为标题行）" if source.header_row > 1 else ""
        hint = (f"文件的表头在第{moved[0]}行，而本模板的表头应在第{source.header_row}行{title_note}；"
                "请不要增删表头上方的行。")
    elif recognised := _recognise(registry, source, rows):
        hint = f"该文件的表头与「{recognised}」的模板一致，请确认是否选错了数据项。"
    columns = "、".join(f"「{h}」" for h in missing)
    return (f"上传的文件不是「{source.title}」的报送模板：缺少必填列{columns}。{hint}"
            "请下载本数据项的模板，按模板填写后重新上传")


def check_upload(registry: Registry, source: Source, path: Path) -> None:
    """Raise :class:`UploadRefused` if the file must not be landed (content, then template)."""
    reason = refusal_reason(path, source.format) or template_problem(registry, source, path)
    if reason is not None:
        raise UploadRefused(reason)


def accept_upload(conn: psycopg.Connection, registry: Registry, source: Source, account: Account, path: Path,
                  filename: str, *, client_addr: str | None = None, data_date: date | None = None) -> UploadResult:
    """Check, land, validate and feed back one uploaded file of ``source`` for ``account``.

    Raises :class:`UploadRefused` (recorded in the audit trail, nothing else stored) when the
    file is refused at the door. ``path`` stays the caller's to remove.
    """
    reference = clean_filename(filename)
    who = {"account_id": account.account_id, "username": account.username, "department": account.department,
           "client_addr": client_addr}
    try:
        check_upload(registry, source, path)
    except UploadRefused as refused:
        with conn.transaction():
            audit.record(conn, "upload_refused", **who, source_id=source.id, file=reference, reason=str(refused))
        raise
    ensure_raw_table(conn, registry.dataset_of(source))  # commits: before the transaction below
    with conn.transaction():
        result = land_file(conn, registry, source, path, reference=reference, data_date=data_date)
        if result.outcome in ("landed", "failed"):
            # Who uploaded it commits with the batch: a batch of the portal is never without its submitter.
            conn.execute("insert into portal.submissions (load_id, account_id, kind, client_addr)"
                         " values (%s, %s, 'upload', %s) on conflict (load_id) do nothing",
                         (result.load_id, account.account_id, client_addr))
        audit.record(conn, "upload", **who, source_id=source.id, file=reference, load_id=result.load_id,
                     outcome=result.outcome, rows=result.rows_received)
    if result.outcome in ("repeat", "already_landed"):
        return UploadResult("repeat", result.load_id, "该文件与已报送的批次内容完全相同，平台已识别，未重复入库")
    if result.outcome == "failed":
        return UploadResult("failed", result.load_id, f"文件未能入库：{_reason(result.error, source)}")
    verdict = validate_and_feed_back(conn, registry, result.load_id)
    return UploadResult("landed", result.load_id, "已接收", verdict, result.warnings)


def validate_and_feed_back(conn: psycopg.Connection, registry: Registry, load_id: str) -> ValidationResult | None:
    """Validate a just-landed batch and write its feedback workbook; None if validation must wait.

    A failure here leaves the batch ``received`` in the ledger: the source's ingest DAG
    validates it on its next run, so nothing is lost and the page says the check is pending.
    """
    try:
        verdict = validate_load(conn, registry, load_id)
        if verdict.rows_quarantined:
            build_feedback(conn, registry, load_id)
    except Exception:
        log.exception("portal: %s landed, but validating it failed; the ingest DAG will retry", load_id)
        conn.rollback()
        return None
    return verdict


def _reason(error: str | None, source: Source) -> str:
    text = error or "无法读取"
    return text.split(": ", 2)[-1] if text.startswith(f"{source.id}: ") else text


def remove_quietly(path: Path | None) -> None:
    """Remove a received upload's temporary file (and nothing else)."""
    if path is not None:
        path.unlink(missing_ok=True)


def clean_work_dir(work_dir: Path) -> None:
    """Remove uploads a stopped server left half-received (at start-up: none is in flight then)."""
    if work_dir.is_dir():
        for leftover in work_dir.glob("upload-*"):
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
