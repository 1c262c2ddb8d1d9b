"""A record a credit platform rejects goes back to the department that sent it, through the feedback path."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import psycopg
from huiju_demo.bulk import write_penalty_csv

from huiju.feedback import REASON_HEADER, ROW_HEADER, ROWS_SHEET
from huiju.landing import land_file
from huiju.push.feedback import send_rejections
from huiju.push.targets import load_targets


def test_rejections_become_a_workbook_and_one_notice(pg_url: str, registry, scratch_var: Path, tmp_path: Path) -> None:
    source = registry.source("scjgj_penalty")
    csv_path = write_penalty_csv(tmp_path / "penalties.csv", source, 5, tag="PUSHREJ")
    targets = load_targets(registry)
    with psycopg.connect(pg_url) as conn:
        load_id = land_file(conn, registry, source, csv_path).load_id
        for row_no in (3, 5):
            conn.execute(
                "insert into ops.push_outbox (target, record_key, relation, action, content_hash, department,"
                " load_id, source_row_no, state, reason) values ('city_credit', %s, 'credit_legal_person_penalty',"
                " 'upsert', 'h', 'scjgj', %s, %s, 'rejected', '统一社会信用代码与名称不符')",
                (f"CF:R{row_no}", load_id, row_no))
        conn.commit()
        [path] = send_rejections(conn, registry, targets)
        assert send_rejections(conn, registry, targets) == []  # once
        (notices,) = conn.execute("select count(*) from ops.notices where kind = 'push_rejected' and load_id = %s",
                                  (load_id,)).fetchone()
        assert notices == 1
        conn.execute("delete from ops.push_outbox where load_id = %s", (load_id,))
        conn.commit()
    sheet = openpyxl.load_workbook(path)[ROWS_SHEET]
    header = [c.value for c in sheet[1]]
    assert header[0] == ROW_HEADER and header[-1] == REASON_HEADER
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert [row[0] for row in rows] == [3, 5]
    assert all(row[-1] == "市公共信用信息平台退回：统一社会信用代码与名称不符" for row in rows)
    assert all(row[1] for row in rows)  # the department's own values, from raw
