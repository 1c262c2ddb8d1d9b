"""数据报送: a department's sources, their templates, Excel upload and manual entry (人工录入)."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from huiju.registry import Source
from huiju.validation import ValidationResult
from huiju_portal import audit
from huiju_portal.bodies import DRAIN_FACTOR, MULTIPART_SLACK, discard_body
from huiju_portal.deps import CSRF_FIELD, Conn, CsrfChecked, Forbidden, NotFound, Submitter, client_addr, registry_of
from huiju_portal.entry import (
    EntryProblems,
    EntryRefused,
    check,
    form_fields,
    parse_records,
    save_entry,
)
from huiju_portal.fields import source_fields
from huiju_portal.ingest_runs import ask_for_publication
from huiju_portal.pages import render
from huiju_portal.scope import DepartmentScope
from huiju_portal.sessions import Session
from huiju_portal.uploads import UploadRefused, accept_upload, receive_upload, remove_quietly, too_large_message
from huiju_portal.workbook import template_filename, template_workbook

router = APIRouter(prefix="/submit")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def own_source(request: Request, session: Session, source_id: str, way: str | None = None) -> Source:
    """The source ``source_id`` if it is the account's own department's portal source offering ``way``.

    Anything else — another department's source, a source of another channel, an unknown id — is
    :class:`NotFound`, the same answer for all.
    """
    department = session.account.department
    source = DepartmentScope(department).source(registry_of(request), source_id) if department else None
    if source is None or source.channel != "portal":
        raise NotFound(source_id)
    if (way == "upload" and not source.channel_settings.upload) or (
            way == "entry" and not source.channel_settings.manual_entry):
        raise NotFound(source_id)
    return source


def _to_batch_page(request: Request, session: Session, source: Source, load_id: str, flag: str,
                   verdict: ValidationResult | None) -> Response:
    """The batch's page; once answered, a batch that passed validation asks Airflow for its source's ingest run."""
    publish = None
    if verdict is not None and verdict.status == "validated" and flag in ("uploaded", "entered"):
        publish = BackgroundTask(ask_for_publication, request.app.state.settings, request.app.state.warehouse_url,
                                 source, load_id, session.account.username)
    return RedirectResponse(f"/history/{quote(load_id)}?from={flag}", status_code=303, background=publish)


def _who(request: Request, session: Session) -> dict[str, object]:
    account = session.account
    return {"account_id": account.account_id, "username": account.username, "department": account.department,
            "client_addr": client_addr(request)}


@router.get("")
def sources(request: Request, session: Submitter) -> Response:
    """The department's sources: how each arrives, and for portal sources, the template, upload and entry."""
    scope = DepartmentScope(session.account.department)
    return render(request, "submit.html", sources=scope.sources(registry_of(request)))


@router.get("/{source_id}/template.xlsx")
def template(request: Request, source_id: str, session: Submitter,
             conn: Conn) -> Response:
    """The source's Excel template (报送模板)."""
    source = own_source(request, session, source_id)
    content = template_workbook(registry_of(request), source)
    audit.record(conn, "template_download", **_who(request, session), source_id=source.id)
    name = template_filename(source)
    return Response(content, media_type=XLSX_TYPE, headers={
        "Content-Disposition": f"attachment; filename=\"template.xlsx\"; filename*=UTF-8''{quote(name)}"})


def _upload_page(request: Request, source: Source, status: int = 200, **context: object) -> Response:
    return render(request, "upload.html", status, source=source, fields=source_fields(registry_of(request), source),
                  max_mb=source.channel_settings.max_upload_mb, max_bytes=source.channel_settings.max_upload_bytes,
                  **context)


@router.get("/{source_id}/upload")
def upload_form(request: Request, source_id: str, session: Submitter) -> Response:
    """The upload page of a source."""
    return _upload_page(request, own_source(request, session, source_id, "upload"))


@router.post("/{source_id}/upload")
async def upload(request: Request, source_id: str, session: Submitter,
                 conn: Conn) -> Response:
    """Receive a workbook: refused at the door with the reason, or landed and validated, then its batch page."""
    source = own_source(request, session, source_id, "upload")
    registry = registry_of(request)
    cap = source.channel_settings.max_upload_bytes
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        return _upload_page(request, source, 411, error="请求不完整（缺少文件长度），请用浏览器重新上传")
    if int(length) > cap + MULTIPART_SLACK:
        # Refused before a byte is kept: the size is known from the request itself.
        message = too_large_message(cap)
        await run_in_threadpool(audit.record, conn, "upload_refused", **_who(request, session), source_id=source.id,
                                reason=message, bytes=int(length))
        if not await discard_body(request, cap * DRAIN_FACTOR + MULTIPART_SLACK):
            return Response(status_code=413)
        return _upload_page(request, source, 413, error=message)
    form = await request.form(max_files=1, max_fields=8, max_part_size=64 * 1024)
    path: Path | None = None
    try:
        token = form.get(CSRF_FIELD)
        if not session.csrf_ok(token if isinstance(token, str) else None):
            raise Forbidden("csrf")
        uploaded = form.get("file")
        if not isinstance(uploaded, UploadFile) or not uploaded.filename:
            return _upload_page(request, source, 400, error="请选择要上传的文件")
        try:
            path = await run_in_threadpool(receive_upload, uploaded.file, request.app.state.settings.work_dir, cap,
                                           Path(uploaded.filename).suffix[:10])
        except UploadRefused as refused:
            await run_in_threadpool(audit.record, conn, "upload_refused", **_who(request, session),
                                    source_id=source.id, file=uploaded.filename[:200], reason=str(refused))
            return _upload_page(request, source, 400, error=str(refused), filename=uploaded.filename)
        try:
            # Refusals at the door are recorded in the audit trail by accept_upload itself.
            result = await run_in_threadpool(accept_upload, conn, registry, source, session.account, path,
                                             uploaded.filename, client_addr=client_addr(request))
        except UploadRefused as refused:
            return _upload_page(request, source, 400, error=str(refused), filename=uploaded.filename)
    finally:
        remove_quietly(path)
        await form.close()
    flag = {"repeat": "repeat", "failed": "failed"}.get(result.outcome, "uploaded")
    return _to_batch_page(request, session, source, result.load_id, flag, result.verdict)


def _entry_page(request: Request, source: Source, status: int = 200, *, submission_id: str | None = None,
                records: list[dict] | None = None, problems: list[dict] | None = None, **context: object) -> Response:
    records = records or [{}]
    return render(request, "entry.html", status, source=source, fields=form_fields(registry_of(request), source),
                  submission_id=submission_id or secrets.token_urlsafe(18), records=records,
                  problems=problems or [{} for _ in records], max_records=source.channel_settings.max_entry_records,
                  **context)


@router.get("/{source_id}/entry")
def entry_form(request: Request, source_id: str, session: Submitter) -> Response:
    """The manual-entry form of a source (a fresh submission id each time it is opened)."""
    return _entry_page(request, own_source(request, session, source_id, "entry"))


@router.post("/{source_id}/entry")
async def entry_save(request: Request, source_id: str, session: Submitter,
                     _: CsrfChecked, conn: Conn) -> Response:
    """Save the entry as one batch (refused whole, with each problem under its field, if any record breaks a rule)."""
    source = own_source(request, session, source_id, "entry")
    registry = registry_of(request)
    form = await request.form()
    fields = form_fields(registry, source)
    submission_id = str(form.get("submission_id") or "")
    items = [(key, value) for key, value in form.multi_items() if isinstance(value, str)]
    try:
        records = parse_records(items, fields, source.channel_settings.max_entry_records)
        result = await run_in_threadpool(save_entry, conn, registry, source, session.account, records, submission_id,
                                         client_addr=client_addr(request))
    except EntryProblems as problems:
        await run_in_threadpool(audit.record, conn, "entry_refused", **_who(request, session), source_id=source.id,
                                records=len(records), problems=sum(1 for p in problems.problems if p))
        return _entry_page(request, source, 400, submission_id=submission_id, records=records,
                           problems=problems.problems, error=str(problems))
    except EntryRefused as refused:
        return _entry_page(request, source, 400, error=str(refused))
    flag = "entered" if result.outcome == "landed" else "repeat"
    return _to_batch_page(request, session, source, result.load_id, flag, result.verdict)


class CheckRequest(BaseModel):
    """Records as typed so far (field name → text), for the live check."""

    records: list[dict[str, str | None]] = Field(max_length=500)


@router.post("/{source_id}/entry/check")
def entry_check(request: Request, source_id: str, body: CheckRequest, session: Submitter,
                _: CsrfChecked, conn: Conn) -> dict:
    """The core's rules on the records typed so far: ``{"problems": [{field: [reason, …]}, …]}`` (nothing stored)."""
    source = own_source(request, session, source_id, "entry")
    known = set(source.columns.values())
    records = [{name: (value or "").strip()[:2000] or None for name, value in record.items() if name in known}
               for record in body.records[:source.channel_settings.max_entry_records]]
    return {"problems": check(conn, registry_of(request), source, records)}
