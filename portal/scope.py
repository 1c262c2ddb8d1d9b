"""Every query about submissions, scoped to the departments the session may see.

A department's accounts see their own department's batches, feedback and reminders and
nothing else; a steward sees any one department, or all. The scope is built from the
session's account, never from the URL, and every statement here carries its department
condition: a load id, notice id or source id from another department is simply not found
(the page answers 404, as for an id that does not exist, so guessing tells nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from huiju.feedback import local_workbook
from huiju.registry import Registry, Source
from huiju_portal.accounts import Account
from huiju_portal.roles import Permission


class OutOfScope(PermissionError):
    """The account may not see any department's submissions."""


@dataclass(frozen=True)
class BatchRow:
    """One batch of the ledger as the history shows it."""

    load_id: str
    source_id: str
    department: str
    channel: str
    reference: str
    status: str
    rows_received: int | None
    rows_accepted: int | None
    rows_quarantined: int | None
    error: str | None
    warnings: list[str]
    received_at: datetime
    data_date: object
    feedback_rows: int | None  # problem rows in its feedback workbook; None when it has none
    kind: str | None  # upload | entry for portal submissions
    submitted_by: str | None  # the portal account's display name
    resubmission_of: str | None


@dataclass(frozen=True)
class ProblemRow:
    """A quarantined row: its number in the department's file and why (values as quarantine keeps them: masked)."""

    row_no: int
    reasons: str
    violations: list[dict]


@dataclass(frozen=True)
class RejectionRow:
    """A workbook of records a credit platform rejected (信用平台退回) from one of the department's batches."""

    workbook_id: int
    load_id: str
    source_id: str
    reference: str
    target_title: str
    rows: int
    created_at: datetime


@dataclass(frozen=True)
class NoticeRow:
    """A notice the department received (催报, feedback, held batch, file-drop problem …)."""

    notice_id: int
    kind: str
    source_id: str | None
    load_id: str | None
    subject: str
    body: str
    created_at: datetime
    delivered: bool


_BATCH_COLUMNS = """
    l.load_id, l.source_id, l.department, l.channel, l.reference, l.status, l.rows_received, l.rows_accepted,
    l.rows_quarantined, l.error, l.warnings, l.received_at, l.data_date, l.resubmission_of,
    (select max(f.rows) from ops.feedback f where f.load_id = l.load_id) as feedback_rows,
    s.kind, a.display_name as submitted_by
    from ops.loads l
    left join portal.submissions s on s.load_id = l.load_id
    left join portal.accounts a on a.account_id = s.account_id"""


@dataclass(frozen=True)
class DepartmentScope:
    """The departments a session may see: one, or every one (``department`` None, stewards only)."""

    department: str | None

    @classmethod
    def for_account(cls, account: Account, registry: Registry, requested: str | None = None) -> DepartmentScope:
        """The scope of ``account``: its own department; a steward's choice (``requested``) or all."""
        if account.can(Permission.VIEW_ALL_DEPARTMENTS):
            return cls(requested if requested in registry.departments else None)
        if account.department is not None and account.can(Permission.VIEW_SUBMISSIONS):
            return cls(account.department)
        raise OutOfScope(f"account {account.username} may not see submissions")

    @property
    def params(self) -> dict[str, object]:
        """The parameters every scoped statement binds."""
        return {"all_departments": self.department is None, "department": self.department}

    # ------------------------------------------------------------------------------------- sources

    def sources(self, registry: Registry) -> list[Source]:
        """The sources in scope, in registry order."""
        return [s for s in registry.sources.values() if self.department in (None, s.department)]

    def source(self, registry: Registry, source_id: str) -> Source | None:
        """The source ``source_id`` if it is in scope, else None."""
        source = registry.sources.get(source_id)
        return source if source is not None and self.department in (None, source.department) else None

    # ------------------------------------------------------------------------------------- batches

    def batches(self, conn: psycopg.Connection, *, source_id: str | None = None, status: str | None = None,
                limit: int = 20, offset: int = 0) -> tuple[list[BatchRow], int]:
        """The batches in scope, newest first, and how many there are in all (for paging)."""
        where = ("where (%(all_departments)s or l.department = %(department)s)"
                 " and (%(source_id)s::text is null or l.source_id = %(source_id)s)"
                 " and (%(status)s::text is null or l.status = %(status)s)")
        params = {**self.params, "source_id": source_id, "status": status, "limit": limit, "offset": offset}
        with conn.cursor(row_factory=dict_row) as cur:
            total = cur.execute(f"select count(*) as n from ops.loads l {where}", params).fetchone()["n"]
            rows = cur.execute(f"select {_BATCH_COLUMNS} {where} order by l.received_at desc, l.load_id"
                               " limit %(limit)s offset %(offset)s", params).fetchall()
        return [BatchRow(**row) for row in rows], total

    def batch(self, conn: psycopg.Connection, load_id: str) -> BatchRow | None:
        """The batch ``load_id`` if it is in scope, else None."""
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(f"select {_BATCH_COLUMNS} where l.load_id = %(load_id)s"
                              " and (%(all_departments)s or l.department = %(department)s)",
                              {**self.params, "load_id": load_id}).fetchone()
        return BatchRow(**row) if row else None

    def problem_rows(self, conn: psycopg.Connection, load_id: str, limit: int = 200) -> tuple[list[ProblemRow], int]:
        """The batch's quarantined rows (first ``limit``) and their number; none if the batch is out of scope."""
        query = ("from quarantine.rows q join ops.loads l on l.load_id = q.load_id"
                 " where q.load_id = %(load_id)s and (%(all_departments)s or l.department = %(department)s)")
        params = {**self.params, "load_id": load_id, "limit": limit}
        total = conn.execute(f"select count(*) {query}", params).fetchone()[0]
        rows = conn.execute(f"select q.row_no, q.reasons, q.violations {query} order by q.row_no"
                            " limit %(limit)s", params).fetchall()
        return [ProblemRow(*row) for row in rows], total

    def feedback_workbook(self, conn: psycopg.Connection, load_id: str) -> Path | None:
        """The batch's feedback workbook (问题数据反馈) on disk, if the batch is in scope and has one."""
        row = conn.execute(
            "select l.source_id, f.path from ops.feedback f join ops.loads l on l.load_id = f.load_id"
            " where f.load_id = %(load_id)s and (%(all_departments)s or l.department = %(department)s)"
            " order by f.delivered_at desc limit 1", {**self.params, "load_id": load_id}).fetchone()
        if row is None:
            return None
        path = local_workbook(row[0], row[1])
        return path if path.is_file() else None

    def rejections(self, conn: psycopg.Connection, limit: int = 20) -> list[RejectionRow]:
        """The workbooks of records the credit platforms rejected from batches in scope, newest first."""
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "select w.workbook_id, w.load_id, l.source_id, l.reference, w.target_title, w.rows, w.created_at"
                " from ops.push_rejection_workbooks w join ops.loads l on l.load_id = w.load_id"
                " where (%(all_departments)s or l.department = %(department)s)"
                " order by w.created_at desc, w.workbook_id desc limit %(limit)s",
                {**self.params, "limit": limit}).fetchall()
        return [RejectionRow(**row) for row in rows]

    def rejection_workbook(self, conn: psycopg.Connection, load_id: str, workbook_id: int) -> Path | None:
        """A rejection workbook of the batch ``load_id`` on disk, if the batch is in scope and has it."""
        row = conn.execute(
            "select l.source_id, w.path from ops.push_rejection_workbooks w join ops.loads l on l.load_id = w.load_id"
            " where w.workbook_id = %(workbook_id)s and w.load_id = %(load_id)s"
            " and (%(all_departments)s or l.department = %(department)s)",
            {**self.params, "load_id": load_id, "workbook_id": workbook_id}).fetchone()
        if row is None:
            return None
        path = local_workbook(row[0], row[1])
        return path if path.is_file() else None

    def status_counts(self, conn: psycopg.Connection, days: int = 30) -> dict[str, int]:
        """Batches per status received in the last ``days`` days."""
        rows = conn.execute(
            "select l.status, count(*) from ops.loads l where (%(all_departments)s or l.department = %(department)s)"
            " and l.received_at > now() - make_interval(days => %(days)s) group by l.status",
            {**self.params, "days": days}).fetchall()
        return dict(rows)

    # ------------------------------------------------------------------------------------- notices

    def notices(self, conn: psycopg.Connection, limit: int = 50) -> list[NoticeRow]:
        """The notices the department received (催报 and every other kind), newest first."""
        return self._notices(conn, "", {"limit": limit})

    def notice(self, conn: psycopg.Connection, notice_id: int) -> NoticeRow | None:
        """The notice ``notice_id`` if it was sent to a department in scope, else None."""
        found = self._notices(conn, "and n.notice_id = %(notice_id)s", {"notice_id": notice_id, "limit": 1})
        return found[0] if found else None

    def _notices(self, conn: psycopg.Connection, condition: str, params: dict) -> list[NoticeRow]:
        rows = conn.execute(
            "select n.notice_id, n.kind, n.source_id, n.load_id, n.subject, n.body, n.created_at,"
            " exists (select 1 from ops.notice_deliveries d where d.notice_id = n.notice_id"
            "         and d.delivered_at is not null)"
            " from ops.notices n where n.department is not null"
            f" and (%(all_departments)s or n.department = %(department)s) {condition}"
            " order by n.created_at desc, n.notice_id desc limit %(limit)s", {**self.params, **params}).fetchall()
        return [NoticeRow(*row) for row in rows]
