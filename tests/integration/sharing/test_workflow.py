"""Each path of a sharing request end to end at the database: file, decide, provision, read, revoke or expire.

Reads go through the grant's own login role, with the password the requester is given; after revocation
or expiry the same role can neither log in nor read on a connection it already had.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from huiju import warehouse
from huiju.sharing import audit, grants
from huiju.sharing.documents import DocumentRefused
from huiju.sharing.workflow import NotAllowed, RequestRefused, decide, file_request, remind_and_escalate, revoke
from tests.integration.sharing.conftest import OTHER_APPROVER, OWNER_APPROVER, REQUESTER, STEWARD, SharingEnv

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _read_as_grant(env: SharingEnv, credentials: grants.GrantCredentials) -> list[tuple]:
    url = warehouse.with_credentials(env.url, credentials.role_name, credentials.password)
    with psycopg.connect(url) as conn:
        return conn.execute(f"select * from {credentials.view} order by 1").fetchall()


def _login_refused(env: SharingEnv, credentials: grants.GrantCredentials) -> None:
    url = warehouse.with_credentials(env.url, credentials.role_name, credentials.password)
    with pytest.raises(psycopg.OperationalError, match=r"password authentication failed|does not exist"):
        psycopg.connect(url).close()


def _kinds(env: SharingEnv, request_id: int) -> list[str]:
    with env.connect() as conn:
        return [row[0] for row in conn.execute("select kind from sharing.audit where request_id = %s order by seq",
                                               (request_id,))]


def test_unconditional_is_provisioned_at_once_read_within_scope_then_revoked(sharing_env: SharingEnv) -> None:
    env = sharing_env
    with env.connect() as conn:
        outcome = file_request(conn, env.catalogue, env.policy, REQUESTER, resource_id="legal_person",
                               fields=["uscc", "legal_person_name"], row_scope={"region_code": ["330102"]},
                               purpose="行政审批中核验企业登记信息", duration_days=30)
        assert (outcome.status, outcome.label) == ("approved", "已批准并开通") and outcome.grant_id
        credentials = grants.issue_credentials(conn, outcome.grant_id, REQUESTER.username)
    # Only the approved fields of the approved rows, through the requester's own role.
    assert _read_as_grant(env, credentials) == [("91330100MA0000001A", "甲公司"), ("91330100MA0000003C", "丙公司")]
    held = psycopg.connect(warehouse.with_credentials(env.url, credentials.role_name, credentials.password),
                           autocommit=True)
    assert held.execute(f"select count(*) from {credentials.view}").fetchone() == (2,)
    # The role reads its view and nothing else.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        held.execute("select * from share.share_legal_person")
    with env.connect() as conn:
        revoke(conn, STEWARD, outcome.request_id, "申请部门职能调整")
    with pytest.raises(psycopg.OperationalError):  # its open session was ended
        held.execute(f"select count(*) from {credentials.view}")
    held.close()
    _login_refused(env, credentials)
    kinds = _kinds(env, outcome.request_id)
    assert kinds[:3] == ["filed", "approved", "provisioned"] and kinds.count("db_read") == 2 and kinds[-1] == "revoked"


def test_conditional_approved_by_the_owning_department_then_expires(sharing_env: SharingEnv) -> None:
    env = sharing_env
    with env.connect() as conn:
        outcome = file_request(conn, env.catalogue, env.policy, REQUESTER, resource_id="natural_person_penalty",
                               fields=["decision_no", "fine_amount_wan"], purpose="联合惩戒名单核查",
                               duration_days=90, today=date(2026, 12, 7), registry=env.registry)
        assert outcome.status == "pending" and outcome.grant_id is None
        due = conn.execute("select due_on, deciding_department from sharing.requests where request_id = %s",
                           (outcome.request_id,)).fetchone()
        assert due == (date(2026, 12, 14), "scjgj")  # 5 working days
    # Another department's approver cannot decide it; nor can the requester.
    for stranger in (OTHER_APPROVER, REQUESTER):
        with env.connect() as conn, pytest.raises(NotAllowed, match="scjgj 的审批人"):
            decide(conn, env.policy, stranger, outcome.request_id, approve=True)
    with env.connect() as conn:
        decided = decide(conn, env.policy, OWNER_APPROVER, outcome.request_id, approve=True)
        credentials = grants.issue_credentials(conn, decided.grant_id, REQUESTER.username)
    assert _read_as_grant(env, credentials) == [("杭市监罚〔2026〕1号", Decimal("0.5")),
                                                ("杭税罚〔2026〕7号", Decimal("1.2"))]
    with env.connect() as conn:
        assert grants.expire_grants(conn, now=datetime.now(UTC) + timedelta(days=91)) == [decided.grant_id]
        status = conn.execute("select status from sharing.requests where request_id = %s",
                              (outcome.request_id,)).fetchone()[0]
    assert status == "expired"
    _login_refused(env, credentials)
    assert _kinds(env, outcome.request_id)[-1] == "expired"


def test_conditional_approved_by_the_bureau_with_a_document(sharing_env: SharingEnv, scratch_var: Path) -> None:
    env = sharing_env
    with env.connect() as conn:
        outcome = file_request(conn, env.catalogue, env.policy, REQUESTER, resource_id="natural_person_penalty",
                               fields=["decision_no"], row_scope={"source_department": ["swj"]},
                               purpose="税收征管协查", duration_days=10)
    bad = [(None, "须上传提供部门的审批件"), (b"MZ\x90\x00" + b"\x00" * 100, "可执行程序"),
           (b"#!/bin/sh\nrm -rf /\n", "可执行程序"), (b"%PDF-" + b"0" * env.policy.document.max_bytes, "超过上限"),
           (b"just some text", "不是可接收的审批件格式")]
    for content, message in bad:
        with env.connect() as conn, pytest.raises((RequestRefused, DocumentRefused), match=message):
            decide(conn, env.policy, STEWARD, outcome.request_id, approve=True, document=content,
                   document_name="审批件.exe")
    assert not (scratch_var / "archive").exists() or not any((scratch_var / "archive").rglob("*.*"))
    with env.connect() as conn:
        assert conn.execute("select status from sharing.requests where request_id = %s",
                            (outcome.request_id,)).fetchone()[0] == "pending"  # nothing half-stored
        decided = decide(conn, env.policy, STEWARD, outcome.request_id, approve=True, document=PDF,
                         document_name="市场监管局审批件.pdf")
        row = conn.execute("select decided_as, document_sha256, document_ref from sharing.requests"
                           " where request_id = %s", (outcome.request_id,)).fetchone()
        credentials = grants.issue_credentials(conn, decided.grant_id, REQUESTER.username)
    assert row[:2] == ("bureau", hashlib.sha256(PDF).hexdigest())
    assert (scratch_var / "archive" / row[2]).read_bytes() == PDF
    assert _read_as_grant(env, credentials) == [("杭税罚〔2026〕7号",)]


def test_not_shared_is_refused_with_its_basis_and_nothing_is_provisioned(sharing_env: SharingEnv) -> None:
    env = sharing_env
    with env.connect() as conn:
        outcome = file_request(conn, env.catalogue, env.policy, REQUESTER, resource_id="population",
                               fields=["person_key"], purpose="核验人员身份信息", duration_days=30)
        reason = conn.execute("select reason, decided_as from sharing.requests where request_id = %s",
                              (outcome.request_id,)).fetchone()
    assert outcome.status == "refused" and outcome.grant_id is None
    assert reason[0].startswith("不予共享：涉及公民个人信息") and reason[1] == "policy"
    assert _kinds(env, outcome.request_id) == ["filed", "refused"]


@pytest.mark.parametrize(("resource", "fields", "scope", "message"), [
    ("legal_person", ["uscc", "id_number"], None, "信息项 'id_number' 不属于信息资源「法人基础信息」"),
    ("legal_person", [], None, "请至少选择一个需要的信息项"),
    ("legal_person", ["uscc"], {"region_code": ["999999"]},
     "数据范围（登记管理机关行政区划码 = 999999）在信息资源「法人基础信息」中没有任何数据"),
    ("legal_person", ["uscc"], {"uscc": ["91330100MA0000001A"]}, "不能按 'uscc' 限定数据范围"),
    ("no_such_resource", ["uscc"], None, "目录中没有信息资源 'no_such_resource'"),
])
def test_bad_input_is_refused_with_a_clear_message_and_nothing_stored(
        sharing_env: SharingEnv, resource: str, fields: list[str], scope: dict | None, message: str) -> None:
    env = sharing_env
    with env.connect() as conn:
        before = conn.execute("select count(*), (select count(*) from sharing.audit) from sharing.requests").fetchone()
        with pytest.raises(RequestRefused, match=message):
            file_request(conn, env.catalogue, env.policy, REQUESTER, resource_id=resource, fields=fields,
                         row_scope=scope, purpose="核验企业信息", duration_days=30)
        after = conn.execute("select count(*), (select count(*) from sharing.audit) from sharing.requests").fetchone()
    assert after == before


def test_reminder_before_the_deadline_and_escalation_after_it(sharing_env: SharingEnv) -> None:
    env = sharing_env
    with env.connect() as conn:
        outcome = file_request(conn, env.catalogue, env.policy, REQUESTER, resource_id="natural_person_license",
                               fields=["decision_no"], purpose="资格核验", duration_days=30,
                               today=date(2026, 12, 7), registry=env.registry)
        # Due 2026-12-14 (5 working days): Friday the 11th is one working day before it.
        assert remind_and_escalate(conn, env.registry, env.policy, env.catalogue, date(2026, 12, 9)) == \
            {"reminded": 0, "escalated": 0}
        assert remind_and_escalate(conn, env.registry, env.policy, env.catalogue, date(2026, 12, 11))["reminded"] >= 1
        assert remind_and_escalate(conn, env.registry, env.policy, env.catalogue, date(2026, 12, 15))["escalated"] >= 1
        # Once each: running again queues nothing new.
        assert remind_and_escalate(conn, env.registry, env.policy, env.catalogue, date(2026, 12, 15)) == \
            {"reminded": 0, "escalated": 0}
        notices = conn.execute(
            "select n.subject, array_agg(d.recipient order by d.recipient) from ops.notices n"
            " join ops.notice_deliveries d using (notice_id) where n.topic = %s group by n.notice_id, n.subject"
            " order by n.notice_id", (f"sharing:{outcome.request_id}",)).fetchall()
    leader = env.registry.departments["zjj"].leader.email
    assert [subject.split("：")[0] for subject, _ in notices] == ["【共享申请】新的共享申请待处理", "【共享申请】提醒",
                                                              "【共享申请·督办】已超过办理时限"]
    assert leader in notices[-1][1] and leader not in notices[0][1]
    assert {"reminded", "escalated"} <= set(_kinds(env, outcome.request_id))


def test_the_sharing_role_may_only_append_to_the_audit_trail(sharing_env: SharingEnv) -> None:
    with sharing_env.connect() as conn:
        audit.record(conn, "probe", "tests")
    for statement in ("update sharing.audit set actor = 'x'", "delete from sharing.audit",
                      "truncate sharing.audit", "update sharing.audit_head set seq = 0",
                      "create role sneaky login", "select * from raw.nothing_here_but_denied"):
        with psycopg.connect(warehouse.role_url("sharing", sharing_env.url), autocommit=True) as conn, \
                pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedTable)):
            conn.execute(statement)
    with sharing_env.connect() as conn:
        assert audit.verify_chain(conn).intact


def test_a_resource_whose_data_is_not_built_yet_is_refused_clearly(sharing_env: SharingEnv) -> None:
    env = sharing_env
    catalogue = {**env.catalogue, "legal_person": dataclasses.replace(env.catalogue["legal_person"],
                                                                      relation="share.share_not_built")}
    with env.connect() as conn, pytest.raises(RequestRefused, match=r"share\.share_not_built 不存在"):
        file_request(conn, catalogue, env.policy, REQUESTER, resource_id="legal_person", fields=["uscc"],
                     purpose="核验企业信息", duration_days=30)


def test_the_sweep_expires_grants_and_chases_deadlines(sharing_env: SharingEnv) -> None:
    from huiju.sharing.sweep import run_sharing_sweep

    env = sharing_env
    with env.connect() as conn:
        outcome = file_request(conn, env.catalogue, env.policy, REQUESTER, resource_id="legal_person",
                               fields=["uscc"], purpose="核验企业信息", duration_days=1)
        conn.execute("update sharing.grants set expires_at = now() - interval '1 second' where grant_id = %s",
                     (outcome.grant_id,))
    with psycopg.connect(env.url) as conn:  # an API call counter no window reads any more, and a current one
        conn.execute("insert into sharing.api_calls (token_sha256, window_start, calls) values"
                     " ('old', date_trunc('minute', now()) - interval '5 minutes', 3),"
                     " ('now', date_trunc('minute', now()), 1)")
    report = run_sharing_sweep(env.registry, date(2027, 1, 4), env.url)
    assert outcome.grant_id in report.expired and report.escalated >= 0
    with psycopg.connect(env.url) as conn:
        assert conn.execute("select token_sha256 from sharing.api_calls where token_sha256 in ('old', 'now')"
                            ).fetchall() == [("now",)]
    assert run_sharing_sweep(env.registry, date(2027, 1, 4), env.url).expired == []


def test_the_sweep_command(sharing_env: SharingEnv, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    from huiju.cli import main
    from huiju.settings import get_settings

    monkeypatch.setenv("HUIJU_WAREHOUSE_URL", sharing_env.url)
    get_settings.cache_clear()
    try:
        assert main(["sharing", "sweep", "--day", "2027-01-04"]) == 0
        assert main(["sharing", "verify-audit"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "sharing sweep 2027-01-04:" in out and "intact" in out


def test_an_unconditional_resource_with_the_bureaus_check_waits_for_a_steward(sharing_env: SharingEnv) -> None:
    env = sharing_env
    with env.connect() as conn:
        outcome = file_request(conn, env.catalogue, env.policy, REQUESTER, resource_id="legal_person_penalty",
                               fields=["decision_no", "legal_rep_id_no"], purpose="资质审批中核查处罚记录",
                               duration_days=30, today=date(2026, 12, 7))
        assert outcome.status == "checking" and outcome.grant_id is None
        assert conn.execute("select due_on from sharing.requests where request_id = %s",
                            (outcome.request_id,)).fetchone()[0] == date(2026, 12, 9)  # 2 working days
    with env.connect() as conn, pytest.raises(NotAllowed):
        decide(conn, env.policy, OWNER_APPROVER, outcome.request_id, approve=True)
    with env.connect() as conn:
        checked = decide(conn, env.policy, STEWARD, outcome.request_id, approve=True)
        credentials = grants.issue_credentials(conn, checked.grant_id, REQUESTER.username)
        decided_as = conn.execute("select decided_as from sharing.requests where request_id = %s",
                                  (outcome.request_id,)).fetchone()[0]
    assert decided_as == "bureau_check"
    assert _read_as_grant(env, credentials) == [("杭市监罚〔2026〕2号", "330102********001X")]  # masked in share


def test_a_failed_sweep_is_told_to_the_stewards_once_a_day(sharing_env: SharingEnv) -> None:
    from huiju.sharing.sweep import alert_sweep_failure

    # 11010519491231002X: GB 11643-1999's own example ID number (a published test vector, nobody's).
    failure = ValueError("sharing.grants is locked 11010519491231002X")
    first = alert_sweep_failure(date(2027, 1, 5), failure, sharing_env.url)
    assert first is not None and alert_sweep_failure(date(2027, 1, 5), failure, sharing_env.url) is None
    with psycopg.connect(sharing_env.url) as conn:
        subject, body, deliveries = conn.execute(
            "select subject, body, (select count(*) from ops.notice_deliveries d where d.notice_id = n.notice_id)"
            " from ops.notices n where notice_id = %s", (first,)).fetchone()
    assert subject.startswith("【共享交换·定时任务失败】2027-01-05") and "ValueError: sharing.grants is locked" in body
    assert "11010519491231002X" not in body and deliveries >= 1
