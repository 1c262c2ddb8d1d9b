"""账号管理 (stewards): create department accounts, reset passwords, disable, unlock after throttling."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from huiju_portal import audit
from huiju_portal.accounts import AccountError, create_account, get_account, list_accounts, reset_password, set_disabled
from huiju_portal.deps import Conn, CsrfChecked, NotFound, Steward, client_addr, registry_of
from huiju_portal.pages import render
from huiju_portal.roles import ROLE_LABELS, Role
from huiju_portal.throttle import clear_failures

router = APIRouter(prefix="/admin")


def _page(request: Request, conn: psycopg.Connection, status: int = 200, **context: object) -> Response:
    return render(request, "accounts.html", status, accounts=list_accounts(conn), role_labels=ROLE_LABELS,
                  **context)


@router.get("/accounts")
def accounts(request: Request, session: Steward,
             conn: Conn) -> Response:
    """Every account, and the form to create one."""
    return _page(request, conn)


@router.post("/accounts")
async def create(request: Request, session: Steward, _: CsrfChecked,
                 conn: Conn) -> Response:
    """Create an account with a temporary password, shown once."""
    form = await request.form()
    roles = {Role(r) for r in form.getlist("roles") if r in Role.__members__.values()}
    department = str(form.get("department") or "") or None
    try:
        account, password = create_account(
            conn, registry_of(request), username=str(form.get("username") or ""),
            display_name=str(form.get("display_name") or ""), department=department, roles=roles,
            created_by=session.account.username)
    except AccountError as exc:
        return _page(request, conn, 400, error=str(exc))
    audit.record(conn, "account_created", account_id=session.account.account_id, username=session.account.username,
                 client_addr=client_addr(request), created=account.username, department_of=account.department,
                 roles=sorted(account.roles))
    return _page(request, conn, created=account, temporary_password=password)


@router.post("/accounts/{account_id}/{action}")
def change(request: Request, account_id: int, action: str, session: Steward,
           _: CsrfChecked, conn: Conn) -> Response:
    """Disable, enable, reset the password of, or unlock an account."""
    target = get_account(conn, account_id)
    if target is None or action not in ("disable", "enable", "reset-password", "unlock"):
        raise NotFound(str(account_id))
    if target.account_id == session.account.account_id and action == "disable":
        return _page(request, conn, 400, error="不能停用自己的账号")
    password = None
    with conn.transaction():
        if action in ("disable", "enable"):
            set_disabled(conn, account_id, action == "disable")
        elif action == "reset-password":
            password = reset_password(conn, account_id)
        else:
            clear_failures(conn, target.username)
        audit.record(conn, f"account_{action.replace('-', '_')}", account_id=session.account.account_id,
                     username=session.account.username, client_addr=client_addr(request), target=target.username)
    if password is not None:
        return _page(request, conn, created=target, temporary_password=password, reset=True)
    return RedirectResponse("/admin/accounts", status_code=303)
