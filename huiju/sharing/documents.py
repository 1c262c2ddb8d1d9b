"""Approval documents (审批件) the bureau uploads when it approves on a department's behalf.

Judged by content, never by the file name: a PDF, an OFD (版式文档, a zip holding ``OFD.xml``), a PNG or a
JPEG scan, no larger than the policy allows. An executable, a script or anything else is refused with a
message that says what to upload instead; nothing of a refused file is stored. An accepted document is kept
in the archive (content-addressed, read-only), and its sha256 goes into the request.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass

from huiju.archive import archive_bytes
from huiju.sharing.config import DocumentPolicy

_EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"#!", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe",
                     b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf")
_KIND_LABELS = {"pdf": "PDF", "ofd": "OFD", "png": "PNG 图片", "jpeg": "JPEG 图片"}


class DocumentRefused(ValueError):
    """The upload is not an approval document the platform keeps; the message (Chinese) says why."""


@dataclass(frozen=True)
class StoredDocument:
    """An approval document kept in the archive."""

    sha256: str
    reference: str  # its path in the archive
    kind: str
    name: str


def document_kind(content: bytes) -> str | None:
    """``pdf``, ``ofd``, ``png`` or ``jpeg`` by content; ``executable`` for a program; None for anything else."""
    if content.startswith(_EXECUTABLE_MAGIC):
        return "executable"
    if content.startswith(b"%PDF-"):
        return "pdf"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if content.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if content.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = {name.rsplit("/", 1)[-1] for name in archive.namelist()}
        except zipfile.BadZipFile:
            return None
        return "ofd" if "OFD.xml" in names else None
    return None


def too_large_message(size: int, policy: DocumentPolicy) -> str:
    """The refusal of an approval document of ``size`` bytes, over the policy's cap."""
    return (f"审批件大小 {size / 1048576:.1f} MB，超过上限 {policy.max_bytes / 1048576:.0f} MB，平台未接收；"
            "请压缩或分辨率调低后重新上传")


def check_document(content: bytes, policy: DocumentPolicy) -> str:
    """The kind of an acceptable approval document; :class:`DocumentRefused` (Chinese reason) otherwise."""
    allowed = "、".join(_KIND_LABELS[kind] for kind in policy.types)
    if not content:
        raise DocumentRefused("审批件为空文件，请上传盖章审批件的扫描件或电子文件")
    if len(content) > policy.max_bytes:
        raise DocumentRefused(too_large_message(len(content), policy))
    kind = document_kind(content)
    if kind == "executable":
        raise DocumentRefused(f"上传的文件是可执行程序或脚本，不是审批文件，平台拒收；请上传 {allowed} 格式的审批件")
    if kind not in policy.types:
        raise DocumentRefused(f"上传的文件不是可接收的审批件格式；请上传 {allowed} 格式的审批件")
    return kind


def store_document(content: bytes, name: str, policy: DocumentPolicy) -> StoredDocument:
    """Check the document, then keep it in the archive; what the request records of it."""
    kind = check_document(content, policy)
    digest = hashlib.sha256(content).hexdigest()
    return StoredDocument(sha256=digest, reference=archive_bytes(content, digest), kind=kind,
                          name=(name or "审批件").replace("/", "_")[-200:])
