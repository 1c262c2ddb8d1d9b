"""The demo's four sharing requests: one of each kind, each ending where it should, filed (and pushed) once per day."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from huiju_demo.sharing import APPROVAL_DOCUMENT, file_demo_requests

from tests.integration.sharing.conftest import SharingEnv


def test_one_request_of_each_kind_and_a_second_run_files_nothing_twice(sharing_env: SharingEnv,
                                                                        scratch_var: Path) -> None:
    env = sharing_env
    with env.connect() as conn:
        before = conn.execute("select coalesce(max(request_id), 0) from sharing.requests").fetchone()[0]
    first = file_demo_requests(env.url, env.registry, date(2026, 11, 20))
    assert [line.split(":", 1)[0].split(" ", 3)[-1] for line in first] == [
        "无条件共享", "有条件共享·提供部门审批", "有条件共享·数据局代审批", "不予共享"]
    assert "已开通 granted.grant_" in first[0] and "已开通" in first[1] and "已开通" in first[2]
    assert "未通过（不予共享：涉及公民个人信息" in first[3]
    # 自然人行政处罚 is shared by push: delivered for the day to zjj's (simulated) receiving system, once.
    assert "；数据推送至住房和城乡建设局建筑市场监管系统：1 期 2 条，已接收 2 条（批次 share_grant_" in first[1]
    assert file_demo_requests(env.url, env.registry, date(2026, 11, 20)) == first
    with env.connect() as conn:
        rows = conn.execute("select status, decided_as from sharing.requests where request_id > %s"
                            " order by request_id", (before,)).fetchall()
    assert rows == [("approved", "auto"), ("approved", "department"), ("approved", "bureau"), ("refused", "policy")]
    assert any(path.read_bytes() == APPROVAL_DOCUMENT for path in (scratch_var / "archive").rglob("*")
               if path.is_file())
