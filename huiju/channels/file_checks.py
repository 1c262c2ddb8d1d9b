"""What the platform refuses in a delivered file, judged by its content, with the reason for the department.

Every way a file arrives — a drop on FTP/SFTP, an upload in the portal — asks :func:`refusal_reason`
before any parser sees the file: a macro-enabled workbook, a legacy ``.xls``, a web page saved
as ``.xlsx``, a zip bomb dressed as a workbook, or a file of another format than the source
agreed to send is refused with a reason in Chinese that says what to do instead. The content
decides (:func:`huiju_connectors.guards.sniff_kind`), never the file name.
"""

from __future__ import annotations

from pathlib import Path

from huiju_connectors.guards import FileKind, UnsafeArchive, check_archive, sniff_kind

MACRO_WORKBOOK = ("文件是启用宏的工作簿（含VBA宏），平台不接收含宏的文件；"
                  "请在Excel中另存为普通工作簿（.xlsx）后重新上传")
LEGACY_WORKBOOK = "文件是旧版Excel格式（.xls），平台只接收 .xlsx；请在Excel中另存为 .xlsx 后重新上传"
HTML_PAGE = ("文件内容是网页（HTML），并不是Excel工作簿或CSV（常见于业务系统“导出Excel”生成的网页表格）；"
             "请导出真正的 .xlsx 或 .csv 后重新上传")
ARCHIVE = "文件是压缩包；请直接上传数据文件本身，不要压缩"


def unsafe_archive_reason(exc: UnsafeArchive) -> str:
    """Why a zip or gzip (a workbook is a zip) is refused: limits exceeded or a broken structure."""
    return f"压缩文件被拒收（疑似压缩炸弹或损坏）：{exc}"


def refusal_reason(path: Path, expected_format: str | None, *, kind: FileKind | None = None) -> str | None:
    """Why the file at ``path`` cannot be taken as the source's ``expected_format``; None when it can.

    ``kind`` is the file's sniffed kind when the caller already has it. A zip or gzip archive is
    refused here (a channel that unpacks archives does so before asking about their members).
    """
    kind = kind or sniff_kind(path)
    if kind == "xlsm":
        return MACRO_WORKBOOK
    if kind == "xls_legacy":
        return LEGACY_WORKBOOK
    if kind == "html":
        return HTML_PAGE
    if kind in ("zip", "gzip"):
        return ARCHIVE
    if kind == "xlsx":
        try:
            check_archive(path)  # a workbook is a zip: refuse absurd ones before the reader unpacks them
        except UnsafeArchive as exc:
            return unsafe_archive_reason(exc)
        if expected_format != "xlsx":
            return f"文件是Excel工作簿，但该数据源约定报送 {expected_format} 文件"
        return None
    if kind == "csv_or_text":
        if expected_format != "csv":
            return (f"文件是文本（CSV），不是Excel工作簿，但该数据源约定报送 {expected_format} 文件；"
                    "请按约定格式重新上传")
        return None
    if kind in ("json", "xml"):
        if expected_format != kind:
            return f"文件内容是 {kind.upper()}，但该数据源约定报送 {expected_format} 文件；请按约定格式重新上传"
        return None
    return f"文件内容无法识别为 {expected_format}（识别为 {kind}）；请按约定格式重新上传"
