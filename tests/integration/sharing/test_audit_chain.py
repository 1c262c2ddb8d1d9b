"""The audit trail's hash chain: a deleted, altered or cut-off row is found, and the trail refuses edits."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from huiju import warehouse
from huiju.sharing import audit


def test_deleting_or_altering_any_row_is_detected(make_database: Callable[..., str]) -> None:
    url = make_database("audit", migrated=True)
    with warehouse.connect(url, role="sharing") as conn:
        for number in range(1, 7):
            audit.record(conn, "probe", "tests", request_id=number, detail={"n": number, "名称": "甲公司"})
        report = audit.verify_chain(conn)
    assert report.intact and report.rows == 6
    # Even the owner cannot edit the trail while its triggers stand.
    with warehouse.connect(url, role="owner") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege,
                                                                        match="append-only"):
        conn.execute("delete from sharing.audit where seq = 3")
    with psycopg.connect(url, autocommit=True) as admin:  # the admin switches the triggers off to tamper
        admin.execute("alter table sharing.audit disable trigger user")
        admin.execute("""update sharing.audit set detail = '{"n": 2, "名称": "乙公司"}' where seq = 2""")
        altered = audit.verify_chain(admin)
        admin.execute("delete from sharing.audit where seq = 4")
        deleted = audit.verify_chain(admin)
        admin.execute("delete from sharing.audit where seq = 6")
        cut = audit.verify_chain(admin)
    assert altered.problems == ["row 2: its content does not match its hash (altered)"]
    assert "rows 4–4 are missing (deleted)" in deleted.problems
    assert "row 5: its link does not match the row before it (a row was deleted or replaced)" in deleted.problems
    assert "the trail ends at row 5 but its head says row 6 (rows cut off the end)" in cut.problems
