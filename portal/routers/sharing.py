"""共享: the resource catalogue (目录), sharing requests (共享申请), decisions (共享审批) and the bureau's steward view.

Who may do what is the core's rule (huiju.sharing.workflow: a department's approver decides its own resources'
requests only, the bureau decides on a department's behalf with its approval document); these pages show each
account what it may act on and turn the core's refusals into messages. A request is visible to the department
that filed it, the department that decides it and the stewards; to anyone else it does not exist (404).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from huiju.archive import read_archived
from huiju.sharing import audit, grants
from huiju.sharing.catalogue import catalogue_json, write_workbook
from huiju.sharing.delivery import export_file_name
from huiju.sharing.documents import DocumentRefused, too_large_message
from huiju.sharing.workflow import (
    AUDIT_KIND_LABELS,
    DECIDED_AS_LABELS,
    STATUS_LABELS,
    NotAllowed,
    RequestRefused,
    decide,
    file_request,
    get_request,
    may_decide,
    requests_for,
    revoke,
)
from huiju_portal.bodies import DRAIN_FACTOR, MULTIPART_SLACK, BodyTooLarge, FormRefused, discard_body, read_form
from huiju_portal.deps import (
    CSRF_FIELD,
    CSRF_HEADER,
    CsrfChecked,
    Forbidden,
    NotFound,
    registry_of,
    require,
    settings_of,
)
from huiju_portal.pages import render
from huiju_portal.roles import Permission
from huiju_portal.sessions import Session
from huiju_portal.sharing_state import actor_of, catalogue_of, policy_of, sharing_connection

router = APIRouter()

CatalogueReader = Annotated[Session, Depends(require(Permission.VIEW_CATALOGUE))]
Requester = Annotated[Session, Depends(require(Permission.REQUEST_SHARING))]


def _render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    return render(request, template, status, status_labels=STATUS_LABELS, decided_as_labels=DECIDED_AS_LABELS,
                  audit_labels=AUDIT_KIND_LABELS,
                  catalogue=catalogue_of(request), **context)


@router.get("/catalogue")
def catalogue(request: Request, session: CatalogueReader) -> Response:
    """The resource catalogue: every resource with its provider, share type and update cycle."""
    return _render(request, "catalogue.html")


@router.get("/catalogue/export.xlsx")
def catalogue_workbook(request: Request, session: CatalogueReader) -> Response:
    """The catalogue as the Excel workbook departments exchange."""
    path = write_workbook(catalogue_of(request), settings_of(request).work_dir / "catalogue.xlsx")
    return Response(path.read_bytes(), media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": "attachment; filename=\"catalogue.xlsx\"; "
                                                    "filename*=UTF-8''%E6%94%BF%E5%8A%A1%E4%BF%A1%E6%81%AF%E8%B5%84"
                                                    "%E6%BA%90%E7%9B%AE%E5%BD%95.xlsx"})


@router.get("/catalogue/export.json")
def catalogue_export_json(request: Request, session: CatalogueReader) -> Response:
    """The catalogue as JSON."""
    return Response(catalogue_json(catalogue_of(request)), media_type="application/json; charset=utf-8")


def _entry(request: Request, resource_id: str) -> Any:
    entry = catalogue_of(request).get(resource_id)
    if entry is None:
        raise NotFound(resource_id)
    return entry


@router.get("/catalogue/{resource_id}")
def resource(request: Request, resource_id: str, session: CatalogueReader) -> Response:
    """One resource: its metadata, its 信息项, and the request form for a department's clerk."""
    return _render(request, "resource.html", entry=_entry(request, resource_id), form={})


@router.post("/catalogue/{resource_id}/request")
async def file(request: Request, resource_id: str, session: Requester, _: CsrfChecked) -> Response:
    """File a request for the resource; its path is the resource's share type."""
    entry = _entry(request, resource_id)
    form = await request.form()
    scope = {column: [value.strip() for value in str(form.get(f"scope_{column}") or "").replace("，", ",").split(",")]
             for column in entry.scope_fields}
    fields = [str(value) for value in form.getlist("fields")]
    try:
        duration = int(str(form.get("duration_days") or "0"))
    except ValueError:
        duration = 0

    def filing() -> Any:
        with sharing_connection(request) as conn:
            return file_request(conn, catalogue_of(request), policy_of(request), actor_of(session.account),
                                resource_id=entry.id, fields=fields, purpose=str(form.get("purpose") or ""),
                                duration_days=duration, row_scope=scope, registry=registry_of(request),
                                idempotency_key=str(form.get("idempotency_key") or "") or None)

    try:
        outcome = await run_in_threadpool(filing)
    except (RequestRefused, NotAllowed) as exc:
        return _render(request, "resource.html", 400, entry=entry, error=str(exc),
                       form={"fields": fields, "purpose": form.get("purpose"),
                             "duration_days": form.get("duration_days"),
                             **{f"scope_{c}": form.get(f"scope_{c}") for c in entry.scope_fields}})
    return RedirectResponse(f"/sharing/{outcome.request_id}?from=filed", status_code=303)


def _visible(request: Request, session: Session, request_id: int) -> dict[str, Any]:
    """The request, if this account may see it (its department filed or decides it, or a steward); else 404."""
    account = session.account
    with sharing_connection(request) as conn:
        try:
            found = get_request(conn, request_id)
        except RequestRefused:
            raise NotFound(str(request_id)) from None
    if not (account.can(Permission.MANAGE_SHARING) or account.department in (found["requester_department"],
                                                                             found["deciding_department"])):
        raise NotFound(str(request_id))
    return found


@router.get("/sharing")
def sharing_home(request: Request, session: CatalogueReader) -> Response:
    """共享申请: the department's own requests, those awaiting its decision; for stewards, every request."""
    account = session.account
    with sharing_connection(request) as conn:
        if account.can(Permission.MANAGE_SHARING):
            own, to_decide, everything = [], requests_for(conn, statuses=("checking", "pending")), requests_for(conn)
        else:
            own = requests_for(conn, requester=account.department)
            to_decide = (requests_for(conn, decider=account.department)
                         if account.can(Permission.APPROVE_REQUESTS) else [])
            everything = []
    return _render(request, "sharing.html", own=own, to_decide=to_decide, everything=everything)


@router.get("/sharing/{request_id}")
def request_page(request: Request, request_id: int, session: CatalogueReader) -> Response:
    """One request: what was asked, where it stands, the decision form for whoever may decide it."""
    found = _visible(request, session, request_id)
    return _request_page(request, session, found)


def _request_page(request: Request, session: Session, found: dict[str, Any], status: int = 200,
                  **context: Any) -> Response:
    account = session.account
    owner_approver = account.can(Permission.APPROVE_REQUESTS) and account.department == found["deciding_department"]
    own = account.department == found["requester_department"]
    with sharing_connection(request) as conn:
        trail = conn.execute("select seq, at, kind, actor, detail from sharing.audit where request_id = %s"
                             " order by seq", (found["request_id"],)).fetchall()
        files = conn.execute("select period, records, file_sha256 from sharing.deliveries where grant_id = %s"
                             " and way = 'export' order by period desc", (found["grant_id"],)).fetchall() \
            if own and found["status"] == "approved" and found["grant_id"] else []
    return _render(request, "request.html", status, req=found, entry=catalogue_of(request).get(found["resource_id"]),
                   files=files,
                   decide_as=may_decide(actor_of(account), found), trail=trail,
                   may_revoke=found["status"] == "approved" and (account.can(Permission.MANAGE_SHARING)
                                                                 or owner_approver),
                   may_fetch=found["status"] == "approved" and account.can(Permission.REQUEST_SHARING)
                   and account.department == found["requester_department"],
                   arrival=request.query_params.get("from"), **context)


@router.post("/sharing/{request_id}/decide")
async def decision(request: Request, request_id: int, session: CatalogueReader) -> Response:
    """Approve or refuse (the bureau attaches the owning department's approval document).

    The body is capped at the document's limit before it is read (huiju_portal.bodies): an oversized document
    is refused by its Content-Length, or the moment the stream passes the cap, never spooled to disk; the
    CSRF token is checked once the capped form is read.
    """
    found = _visible(request, session, request_id)
    policy = policy_of(request)
    cap = policy.document.max_bytes + MULTIPART_SLACK
    try:
        form = await read_form(request, cap)
    except BodyTooLarge as exc:
        if exc.declared and not await discard_body(request, cap * DRAIN_FACTOR):
            return Response(status_code=413)
        return _request_page(request, session, found, 413, error=too_large_message(exc.received, policy.document))
    except FormRefused:
        return _request_page(request, session, found, 400, error="提交的表单无法读取，请刷新页面后重新提交")
    try:
        presented = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        if not session.csrf_ok(presented if isinstance(presented, str) else None):
            raise Forbidden("csrf")
        upload = form.get("document")
        content, name = None, ""
        if isinstance(upload, UploadFile) and upload.filename:
            content = await upload.read(policy.document.max_bytes + 1)
            name = upload.filename
    finally:
        await form.close()

    def deciding() -> Any:
        with sharing_connection(request) as conn:
            return decide(conn, policy, actor_of(session.account), request_id, approve=form.get("verdict") == "approve",
                          reason=str(form.get("reason") or ""), document=content, document_name=name)

    try:
        await run_in_threadpool(deciding)
    except NotAllowed:
        raise Forbidden("sharing") from None
    except (RequestRefused, DocumentRefused) as exc:
        return _request_page(request, session, found, 400, error=str(exc))
    return RedirectResponse(f"/sharing/{request_id}?from=decided", status_code=303)


@router.post("/sharing/{request_id}/revoke")
async def revoking(request: Request, request_id: int, session: CatalogueReader, _: CsrfChecked) -> Response:
    """Revoke the grant: the database role, the view and the API token stop working at once."""
    found = _visible(request, session, request_id)
    form = await request.form()

    def run() -> Any:
        with sharing_connection(request) as conn:
            return revoke(conn, actor_of(session.account), request_id, str(form.get("reason") or ""))

    try:
        await run_in_threadpool(run)
    except NotAllowed:
        raise Forbidden("sharing") from None
    except RequestRefused as exc:
        return _request_page(request, session, found, 400, error=str(exc))
    return RedirectResponse(f"/sharing/{request_id}?from=revoked", status_code=303)


@router.get("/sharing/{request_id}/files/{period}")
def delivered_file(request: Request, request_id: int, period: str, session: Requester) -> Response:
    """A period's data file of the department's live grant (共享方式 push, exported): downloaded, audited."""
    found = _visible(request, session, request_id)
    if found["requester_department"] != session.account.department or found["status"] != "approved":
        raise NotFound(str(request_id))  # revoked or expired: its files are gone with its access
    with sharing_connection(request) as conn:
        row = conn.execute("select period, file_ref, file_sha256 from sharing.deliveries where grant_id = %s"
                           " and way = 'export' and period::text = %s", (found["grant_id"], period)).fetchone()
        if row is None:
            raise NotFound(period)
        content = read_archived(row[1])
        name = export_file_name({"resource_id": found["resource_id"], "grant_id": found["grant_id"]}, row[0])
        audit.record(conn, "file_downloaded", session.account.username, request_id=request_id,
                     grant_id=found["grant_id"], detail={"period": period, "file_sha256": row[2]})
    return Response(content, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename=\"{name}\""})


@router.post("/sharing/{request_id}/credentials")
def credentials(request: Request, request_id: int, session: Requester, _: CsrfChecked) -> Response:
    """New credentials for the department's live grant (database password and API token), shown this once."""
    found = _visible(request, session, request_id)
    if found["requester_department"] != session.account.department or found["status"] != "approved":
        raise NotFound(str(request_id))
    with sharing_connection(request) as conn:
        issued = grants.issue_credentials(conn, found["grant_id"], session.account.username)
    return _request_page(request, session, get_request_fresh(request, request_id), issued=issued)


def get_request_fresh(request: Request, request_id: int) -> dict[str, Any]:
    """The request as it stands now."""
    with sharing_connection(request) as conn:
        return get_request(conn, request_id)
