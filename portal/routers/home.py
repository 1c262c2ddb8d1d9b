"""The home page (首页): who is logged in, what to do next, the latest batches and reminders."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from huiju_portal.deps import Conn, CurrentSession, registry_of
from huiju_portal.pages import render
from huiju_portal.roles import Permission
from huiju_portal.scope import DepartmentScope

router = APIRouter()


@router.get("/")
def home(request: Request, session: CurrentSession,
         conn: Conn) -> Response:
    """The landing page after login."""
    account = session.account
    registry = registry_of(request)
    context: dict[str, object] = {"password_changed": request.query_params.get("password") == "changed"}
    if account.can(Permission.VIEW_SUBMISSIONS):
        scope = DepartmentScope.for_account(account, registry)
        batches, _ = scope.batches(conn, limit=5)
        context.update(scope=scope, batches=batches, counts=scope.status_counts(conn),
                       notices=scope.notices(conn, limit=5),
                       sources=scope.sources(registry) if account.department else [])
    return render(request, "home.html", **context)
