"""Accounts: who may log in to the portal, for which department, in which roles.

Accounts are created by a steward (in the portal, or ``python -m huiju_portal account create``)
with a temporary password the holder must change at first login; the demo creates one
submitter and one approver per demo department and a steward, with passwords kept in
``var/portal/demo_passwords.json`` (mode 0600) like Airflow's demo admin.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from huiju.private_files import write_private
from huiju.registry import Registry
from huiju_portal.passwords import generate_password, hash_password, needs_rehash, password_problem, verify_password
from huiju_portal.roles import DEPARTMENT_ROLES, Permission, Role, permissions_of

USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{2,63}$")


class AccountError(ValueError):
    """An account cannot be created or changed as asked; the message (Chinese) says why."""


@dataclass(frozen=True)
class Account:
    """A portal account as the pages see it (never its password hash)."""

    account_id: int
    username: str
    display_name: str
    department: str | None
    roles: frozenset[Role]
    must_change_password: bool
    disabled: bool

    @property
    def permissions(self) -> frozenset[Permission]:
        """Everything this account may do."""
        return permissions_of(self.roles)

    @property
    def allowed(self) -> frozenset[str]:
        """The permissions' names (``"submit"`` …), as templates test them."""
        return frozenset(p.value for p in self.permissions)

    def can(self, permission: Permission | str) -> bool:
        """Whether the account may do ``permission``."""
        return Permission(permission) in self.permissions

    @property
    def role_labels(self) -> str:
        """The roles in Chinese, e.g. ``报送员、审批人``."""
        return "、".join(role.label for role in Role if role in self.roles)


_COLUMNS = "account_id, username, display_name, department, roles, must_change_password, disabled_at"


def _account(row: dict) -> Account:
    return Account(row["account_id"], row["username"], row["display_name"], row["department"],
                   frozenset(Role(r) for r in row["roles"]), row["must_change_password"],
                   row["disabled_at"] is not None)


def get_account(conn: psycopg.Connection, account_id: int) -> Account | None:
    """The account ``account_id``, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"select {_COLUMNS} from portal.accounts where account_id = %s", (account_id,)).fetchone()
    return _account(row) if row else None


def find_account(conn: psycopg.Connection, username: str) -> Account | None:
    """The account called ``username`` (case-insensitive), or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"select {_COLUMNS} from portal.accounts where username = %s",
                          (username.strip().lower(),)).fetchone()
    return _account(row) if row else None


def list_accounts(conn: psycopg.Connection) -> list[Account]:
    """Every account, the bureau's first, then by department and name."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"select {_COLUMNS} from portal.accounts"
                           " order by department nulls first, username").fetchall()
    return [_account(row) for row in rows]


def create_account(conn: psycopg.Connection, registry: Registry, *, username: str, display_name: str,
                   department: str | None, roles: set[Role] | frozenset[Role], password: str | None = None,
                   must_change_password: bool = True, created_by: str | None = None) -> tuple[Account, str]:
    """Create an account; returns it and its password (generated when not given: show it once, never store it).

    Raises :class:`AccountError` (Chinese) for a bad name, a taken name, an unknown department,
    a department role without a department, or a password that breaks the rules.
    """
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise AccountError("用户名须为3至64位小写字母、数字或 _ . -，并以字母开头")
    if not roles:
        raise AccountError("请至少选择一个角色")
    if department is not None and department not in registry.departments:
        raise AccountError(f"没有编码为 {department} 的部门")
    if roles & DEPARTMENT_ROLES and department is None:
        raise AccountError("报送员和审批人必须属于某个部门")
    if department is not None and Role.STEWARD in roles:
        raise AccountError("数据管理员属于大数据局，不属于某个部门")
    password = password or generate_password()
    problem = password_problem(password, username)
    if problem:
        raise AccountError(problem)
    try:
        with conn.transaction():
            account_id = conn.execute(
                "insert into portal.accounts (username, display_name, department, roles, password_hash,"
                " must_change_password, created_by) values (%s, %s, %s, %s, %s, %s, %s) returning account_id",
                (username, display_name.strip() or username, department, sorted(r.value for r in roles),
                 hash_password(password), must_change_password, created_by)).fetchone()[0]
    except psycopg.errors.UniqueViolation:
        raise AccountError(f"用户名 {username} 已被使用") from None
    account = get_account(conn, account_id)
    assert account is not None
    return account, password


def authenticate(conn: psycopg.Connection, username: str, password: str) -> Account | None:
    """The account if ``password`` is its password and it is not disabled; None otherwise (same cost either way)."""
    row = conn.execute("select account_id, password_hash, disabled_at from portal.accounts where username = %s",
                       (username.strip().lower(),)).fetchone()
    stored = row[1] if row else None
    if not verify_password(stored, password) or row is None or row[2] is not None:
        return None
    if needs_rehash(row[1]):
        conn.execute("update portal.accounts set password_hash = %s where account_id = %s",
                     (hash_password(password), row[0]))
    return get_account(conn, row[0])


def change_password(conn: psycopg.Connection, account: Account, current: str, new: str) -> None:
    """Change the account's own password (the current one must be right); other sessions end."""
    row = conn.execute("select password_hash from portal.accounts where account_id = %s",
                       (account.account_id,)).fetchone()
    if row is None or not verify_password(row[0], current):
        raise AccountError("当前密码不正确")
    if current == new:
        raise AccountError("新密码不能与当前密码相同")
    problem = password_problem(new, account.username)
    if problem:
        raise AccountError(problem)
    conn.execute("update portal.accounts set password_hash = %s, must_change_password = false,"
                 " password_changed_at = now() where account_id = %s", (hash_password(new), account.account_id))


def reset_password(conn: psycopg.Connection, account_id: int) -> str:
    """A new temporary password for the account (to be changed at its next login); its sessions end."""
    password = generate_password()
    conn.execute("update portal.accounts set password_hash = %s, must_change_password = true,"
                 " password_changed_at = now() where account_id = %s", (hash_password(password), account_id))
    conn.execute("update portal.sessions set revoked_at = now() where account_id = %s and revoked_at is null",
                 (account_id,))
    return password


def set_disabled(conn: psycopg.Connection, account_id: int, disabled: bool) -> None:
    """Disable (its sessions end at once) or enable an account."""
    conn.execute("update portal.accounts set disabled_at = case when %s then coalesce(disabled_at, now()) end"
                 " where account_id = %s", (disabled, account_id))
    if disabled:
        conn.execute("update portal.sessions set revoked_at = now() where account_id = %s and revoked_at is null",
                     (account_id,))


# --------------------------------------------------------------------------------------------- demo

DEMO_STEWARD = "steward"


def demo_usernames(department: str) -> dict[Role, str]:
    """The demo accounts of a department: ``<code>_submitter`` (报送员) and ``<code>_approver`` (审批人)."""
    return {Role.SUBMITTER: f"{department}_submitter", Role.APPROVER: f"{department}_approver"}


def ensure_demo_accounts(conn: psycopg.Connection, registry: Registry, passwords_file: Path) -> dict[str, str]:
    """A submitter and an approver per department and one steward, each created once; their passwords.

    Passwords are generated once and kept in ``passwords_file`` (mode 0600), so a second run
    prints the same logins. Demo accounts need no password change at first login.
    """
    known: dict[str, str] = (json.loads(passwords_file.read_text(encoding="utf-8"))
                             if passwords_file.exists() else {})
    wanted: list[tuple[str, str, str | None, Role]] = [(DEMO_STEWARD, "大数据局数据管理员", None, Role.STEWARD)]
    for code, department in registry.departments.items():
        for role, username in demo_usernames(code).items():
            wanted.append((username, f"{department.name}{role.label}", code, role))
    for username, display_name, department, role in wanted:
        if find_account(conn, username) is not None and username in known:
            continue
        password = known.get(username) or generate_password()
        existing = find_account(conn, username)
        if existing is None:
            create_account(conn, registry, username=username, display_name=display_name, department=department,
                           roles={role}, password=password, must_change_password=False, created_by="demo")
        else:  # the account exists but its password was lost with the file: set a new one
            conn.execute("update portal.accounts set password_hash = %s where account_id = %s",
                         (hash_password(password), existing.account_id))
        known[username] = password
    conn.commit()
    write_private(passwords_file, json.dumps(known, ensure_ascii=False, indent=1))  # 0600 from its creation
    return known
