"""The sharing audit trail (审计日志): append-only, each row chained to the one before by hash.

Rows are appended with :func:`record` (in the caller's transaction, so a step and its audit row commit
together); the database computes the chain (``sharing.audit_chain``, huiju/sql/210_sharing.sql):
``row_hash = sha256(prev_hash || sharing.audit_content(row))``, and keeps the head (the last row) apart.
:func:`verify_chain` walks the trail and names every row deleted, altered or cut off the end.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from huiju.masking import mask_value

GENESIS = "0" * 64


def record(conn: psycopg.Connection, kind: str, actor: str, *, request_id: int | None = None,
           grant_id: int | None = None, detail: dict[str, Any] | None = None) -> int:
    """Append one row to the trail (``kind``: filed, approved, refused, provisioned, api_read, …); its seq.

    ``detail`` is masked (no ID or mobile number in clear reaches the trail).
    """
    masked = {key: mask_value(value) for key, value in (detail or {}).items()}
    row = conn.execute("insert into sharing.audit (kind, actor, request_id, grant_id, detail)"
                       " values (%s, %s, %s, %s, %s) returning seq",
                       (kind, actor, request_id, grant_id, Jsonb(masked))).fetchone()
    return int(row[0])


@dataclass
class ChainReport:
    """What :func:`verify_chain` found: rows read, and each problem (empty: the chain holds)."""

    rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """True when no row was deleted, altered or cut off."""
        return not self.problems


def verify_chain(conn: psycopg.Connection) -> ChainReport:
    """Recompute the chain from the first row: every gap, broken link, altered row and cut-off tail is a problem."""
    report = ChainReport()
    expected_seq, previous = 1, GENESIS
    with conn.cursor() as cur:
        cur.execute("select seq, prev_hash, row_hash, sharing.audit_content(seq, at, kind, actor, request_id,"
                    " grant_id, detail) from sharing.audit order by seq")
        for seq, prev_hash, row_hash, content in cur:
            report.rows += 1
            if seq != expected_seq:
                report.problems.append(f"rows {expected_seq}–{seq - 1} are missing (deleted)")
            if prev_hash != previous:
                report.problems.append(f"row {seq}: its link does not match the row before it (a row was deleted "
                                       "or replaced)")
            if hashlib.sha256((prev_hash + content).encode("utf-8")).hexdigest() != row_hash:
                report.problems.append(f"row {seq}: its content does not match its hash (altered)")
            expected_seq, previous = seq + 1, row_hash
        head = cur.execute("select seq, row_hash from sharing.audit_head").fetchone()
    last = (expected_seq - 1, previous)
    if head is not None and tuple(head) != last:
        report.problems.append(f"the trail ends at row {last[0]} but its head says row {head[0]} (rows cut off "
                               "the end)")
    if head is None and report.rows:
        report.problems.append("the trail's head is missing")
    return report
