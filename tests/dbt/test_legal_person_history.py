"""The legal-person history takes over the dbt snapshot it replaced (archive.snap_basic_legal_person,
a `check` snapshot with hard deletes invalidated): its first build keeps every version the snapshot
recorded, with the snapshot's ids and times, then compares today's legal persons with them; the view
archive.archive_legal_person_history shows them as the snapshot did. (tests/dbt/test_dbt_warehouse.py
checks the history of daily builds.)
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from huiju_demo.bulk import valid_uscc, write_penalty_csv

from huiju.registry import load_registry
from huiju.transform import run_dbt
from tests.dbt.helpers import land_and_publish

pytestmark = pytest.mark.integration

T1, T2, T3 = datetime(2026, 11, 1, 2), datetime(2026, 11, 2, 2), datetime(2026, 11, 3, 2)
CONTINUING, VANISHING, DELETED = valid_uscc(0), valid_uscc(1), valid_uscc(2)


def _old_snapshot(conn: psycopg.Connection) -> None:
    """The dbt snapshot as it was: basic_legal_person's columns of the time plus dbt's (timestamps without zone).

    Owned by the transformation's role, as dbt made it (or as 160_roles.sql hands over one made before the roles).
    """
    conn.execute("set local role huiju_transform")
    conn.execute("create table archive.snap_basic_legal_person (uscc text, legal_person_name text,"
                 " legal_person_type text, legal_rep text, is_authority boolean, region_code text,"
                 " dbt_scd_id text, dbt_updated_at timestamp, dbt_valid_from timestamp, dbt_valid_to timestamp)")
    rows = [
        (CONTINUING, "测试企业0旧名有限公司", "法人及非法人组织", "张三", False, "old-0-1", T1, T2),
        (CONTINUING, "测试企业0有限公司", "法人及非法人组织", "张三", False, "old-0-2", T2, None),  # as today
        (VANISHING, "测试企业1有限公司", "法人及非法人组织", "张三", False, "old-1-1", T1, None),
        (DELETED, "测试企业2有限公司", "法人及非法人组织", "张三", False, "old-2-1", T1, T3),
    ]
    for uscc, name, kind, rep, authority, scd_id, valid_from, valid_to in rows:
        conn.execute("insert into archive.snap_basic_legal_person values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                     (uscc, name, kind, rep, authority, uscc[2:8], scd_id, valid_from, valid_from, valid_to))


def test_the_first_build_takes_over_the_snapshots_versions(make_database, tmp_path: Path) -> None:
    url = make_database("history", migrated=True)
    registry = load_registry()
    # today: one penalty on CONTINUING (named as in its current snapshot version), by an authority
    day = write_penalty_csv(tmp_path / "day.csv", registry.source("scjgj_penalty"), 1, tag="H")
    land_and_publish(url, "scjgj_penalty", day, registry)
    with psycopg.connect(url) as conn:
        _old_snapshot(conn)
        before = conn.execute("select now()").fetchone()[0]
    # buildable: not the data tests of models outside the selection that merely share a parent with it
    run_dbt(["build", "--select", "+archive_legal_person_history", "--indirect-selection", "buildable"], url,
            target_path=tmp_path / "target")

    with psycopg.connect(url) as conn:  # the server's time zone, as dbt's sessions: the snapshot's times read back
        kind = conn.execute("select table_type from information_schema.tables where table_schema = 'archive'"
                            " and table_name = 'archive_legal_person_history'").fetchone()
        history = {}
        for uscc, name, scd_id, valid_from, valid_to in conn.execute(
                "select uscc, legal_person_name, dbt_scd_id, dbt_valid_from, dbt_valid_to"
                " from archive.archive_legal_person_history order by uscc, dbt_valid_from"):
            history.setdefault(uscc, []).append((name, scd_id, valid_from, valid_to))
    naive = {uscc: [(name, scd_id, start.replace(tzinfo=None), end and end.replace(tzinfo=None))
                    for name, scd_id, start, end in versions] for uscc, versions in history.items()}
    assert kind == ("VIEW",)
    # the snapshot's versions, ids and times kept; unchanged today, so no new version
    assert naive[CONTINUING] == [("测试企业0旧名有限公司", "old-0-1", T1, T2),
                                 ("测试企业0有限公司", "old-0-2", T2, None)]
    assert naive[DELETED] == [("测试企业2有限公司", "old-2-1", T1, T3)]  # deleted as the snapshot recorded
    # no longer in the base: closed by this build
    (name, scd_id, valid_from, valid_to), = history[VANISHING]
    assert (name, scd_id, valid_from.replace(tzinfo=None)) == ("测试企业1有限公司", "old-1-1", T1)
    assert valid_to is not None and valid_to >= before
    # new since the snapshot: the authority of today's penalty
    authorities = [versions for uscc, versions in history.items() if uscc not in (CONTINUING, VANISHING, DELETED)]
    assert len(authorities) == 1 and authorities[0][0][0] == "测试市市场监督管理局" and authorities[0][0][3] is None
