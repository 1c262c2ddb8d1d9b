"""报送记录: the department's batches (every channel), each verdict, its feedback workbook, the workbooks of
records the credit platforms rejected (信用平台退回), reminders, scorecard."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from huiju_portal import audit
from huiju_portal.deps import Conn, NotFound, Scope, client_addr, registry_of
from huiju_portal.pages import STATUS_LABELS, render
from huiju_portal.scorecard import department_scorecard, monitoring_available

router = APIRouter()
PAGE_SIZE = 20
T = TypeVar("T")
# What the batch page says first, after the request that brought the visitor there.
ARRIVAL_NOTES = {
    "uploaded": "文件已接收并完成校验，结果如下。",
    "entered": "录入的记录已保存为一个报送批次，结果如下。",
    "repeat": "该内容与此前已报送的批次完全相同，平台已识别，未重复入库；下面是此前的批次。",
    "failed": "文件未能入库，原因见下。",
}


def _in_scope(found: T | None, load_id: str) -> T:
    """What the scope found for ``load_id``; nothing found (another department's, or no such batch) is 404."""
    if found is None:
        raise NotFound(load_id)
    return found


@router.get("/history")
def history(request: Request, scope: Scope, conn: Conn, source: str | None = None, status: str | None = None,
            page: int = 1) -> Response:
    """The batches in scope, newest first, with filters, the reminders received and the scorecard."""
    registry = registry_of(request)
    page = max(1, min(page, 10_000))
    source_id = source if source and scope.source(registry, source) is not None else None
    status = status if status in STATUS_LABELS else None
    batches, total = scope.batches(conn, source_id=source_id, status=status, limit=PAGE_SIZE,
                                   offset=(page - 1) * PAGE_SIZE)
    scorecard = department_scorecard(conn, registry, scope.department) if scope.department else None
    return render(request, "history.html", scope=scope, batches=batches, total=total, page=page,
                  pages=max(1, -(-total // PAGE_SIZE)), source_id=source_id, status=status,
                  sources=scope.sources(registry), notices=scope.notices(conn, limit=10), scorecard=scorecard,
                  rejections=scope.rejections(conn),
                  monitoring=monitoring_available(), statuses=STATUS_LABELS)


@router.get("/history/{load_id}")
def batch(request: Request, load_id: str, scope: Scope,
          conn: Conn) -> Response:
    """One batch: its verdict, counts, each problem row with its reasons, its feedback workbook."""
    found = _in_scope(scope.batch(conn, load_id), load_id)
    problems, problem_total = scope.problem_rows(conn, load_id)
    return render(request, "batch.html", batch=found, problems=problems, problem_total=problem_total,
                  has_workbook=scope.feedback_workbook(conn, load_id) is not None,
                  arrival=ARRIVAL_NOTES.get(request.query_params.get("from", "")),
                  source=registry_of(request).sources.get(found.source_id))


@router.get("/history/{load_id}/feedback.xlsx")
def feedback(request: Request, load_id: str, scope: Scope,
             conn: Conn) -> Response:
    """The batch's feedback workbook (问题数据反馈), found through the ledger: never a path from the URL."""
    return _workbook(request, conn, _in_scope(scope.feedback_workbook(conn, load_id), load_id), "feedback_download",
                     load_id=load_id)


@router.get("/history/{load_id}/rejected/{workbook_id}.xlsx")
def rejected(request: Request, load_id: str, workbook_id: int, scope: Scope, conn: Conn) -> Response:
    """A workbook of the batch's records a credit platform rejected (信用平台退回), found through the ledger."""
    path = _in_scope(scope.rejection_workbook(conn, load_id, workbook_id), load_id)
    return _workbook(request, conn, path, "rejection_download", load_id=load_id, workbook_id=workbook_id)


def _workbook(request: Request, conn: Conn, path: Path, event: str, **detail: object) -> Response:
    """A workbook the department downloads, the download recorded in the audit trail."""
    session = request.state.session
    audit.record(conn, event, account_id=session.account.account_id, username=session.account.username,
                 department=session.account.department, client_addr=client_addr(request), **detail)
    return FileResponse(path, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": "attachment; filename=\"feedback.xlsx\"; "
                                                        f"filename*=UTF-8''{quote(path.name)}"})


@router.get("/notices")
def notices(request: Request, scope: Scope,
            conn: Conn) -> Response:
    """The reminders and notices the department received (催报, feedback, held batches, file-drop problems)."""
    return render(request, "notices.html", scope=scope, notices=scope.notices(conn, limit=200))


@router.get("/notices/{notice_id}")
def notice(request: Request, notice_id: int, scope: Scope,
           conn: Conn) -> Response:
    """One notice, as it was sent (ID and mobile numbers masked when it was queued)."""
    found = scope.notice(conn, notice_id)
    if found is None:
        raise NotFound(str(notice_id))
    return render(request, "notice.html", notice=found)
