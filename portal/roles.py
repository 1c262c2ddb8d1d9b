"""Roles and what each may do (the portal's whole permission model, in one place).

- 报送员 ``submitter``: a department's clerk who submits its data (upload, manual entry, templates)
  and follows its batches, feedback and reminders;
- 审批人 ``approver``: a department's officer who approves other departments' requests for its
  data (the sharing workflow); sees the department's submissions but does not submit;
- 数据管理员 ``steward``: the bureau's data steward: every department's submissions, and the
  portal's accounts.

Pages and queries ask for a :class:`Permission`, never for a role, so a new area (the
catalogue, sharing requests) adds permissions here and grants them to roles in one table.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A role an account holds (an account may hold several)."""

    SUBMITTER = "submitter"
    APPROVER = "approver"
    STEWARD = "steward"

    @property
    def label(self) -> str:
        """The role's Chinese name."""
        return ROLE_LABELS[self]


class Permission(StrEnum):
    """Something a page or a query lets someone do."""

    SUBMIT = "submit"  # upload, manual entry, download templates, for the own department
    VIEW_SUBMISSIONS = "view_submissions"  # the own department's batches, feedback, reminders, scorecard
    VIEW_ALL_DEPARTMENTS = "view_all_departments"  # any department's (the bureau)
    MANAGE_ACCOUNTS = "manage_accounts"  # create, disable, reset, unlock accounts
    APPROVE_REQUESTS = "approve_requests"  # requests for the department's data (the sharing workflow)
    VIEW_CATALOGUE = "view_catalogue"  # the resource catalogue (政务信息资源目录), its exports
    REQUEST_SHARING = "request_sharing"  # file a sharing request for the own department, fetch its credentials
    MANAGE_SHARING = "manage_sharing"  # the bureau: check requests, approve on a department's behalf, revoke


ROLE_LABELS = {Role.SUBMITTER: "报送员", Role.APPROVER: "审批人", Role.STEWARD: "数据管理员"}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.SUBMITTER: frozenset({Permission.SUBMIT, Permission.VIEW_SUBMISSIONS, Permission.VIEW_CATALOGUE,
                               Permission.REQUEST_SHARING}),
    Role.APPROVER: frozenset({Permission.VIEW_SUBMISSIONS, Permission.APPROVE_REQUESTS, Permission.VIEW_CATALOGUE}),
    Role.STEWARD: frozenset({Permission.VIEW_SUBMISSIONS, Permission.VIEW_ALL_DEPARTMENTS,
                             Permission.MANAGE_ACCOUNTS, Permission.VIEW_CATALOGUE, Permission.MANAGE_SHARING}),
}

# Roles that act for a department, and so need one.
DEPARTMENT_ROLES = frozenset({Role.SUBMITTER, Role.APPROVER})


def permissions_of(roles: frozenset[Role] | set[Role]) -> frozenset[Permission]:
    """Everything the holder of ``roles`` may do."""
    granted: set[Permission] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS[role]
    return frozenset(granted)
