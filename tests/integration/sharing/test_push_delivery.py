"""共享方式 push end to end: approve → delivered once per period → revoke → nothing more; pushed to the requester's
receiver, or, for a department without one, exported as a file.

The receiver is the push tests' simulated platform on loopback (HMAC-signed batches, idempotency keys,
per-record receipts); the grant is 住房和城乡建设局's request for 自然人行政处罚 (shared by push, and zjj declares
a receiver in config/sharing/receivers/), approved by 市场监督管理局's approver, limited to two fields and to
the rows of one department.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest
from huiju_demo.credit_platform import CreditPlatform as SimulatedPlatform

from huiju import warehouse
from huiju.channels.connection import ConnectionInfo
from huiju.sharing.config import Receiver, load_receivers
from huiju.sharing.delivery import DeliveryReport, outbox_name, run_share_deliveries
from huiju.sharing.workflow import decide, file_request, revoke
from tests.integration.sharing.conftest import OWNER_APPROVER, REQUESTER, STEWARD, SharingEnv

DAY = date(2026, 12, 7)


@pytest.fixture
def receiver() -> Iterator[SimulatedPlatform]:
    """zjj's receiving system, as config/sharing/receivers/zjj.yaml says it signs (HMAC-SHA256)."""
    with SimulatedPlatform(name="zjj", hang_seconds=0.3).running() as platform:
        yield platform


def _deliver(env: SharingEnv, receiver: SimulatedPlatform | None, period: date,
             receivers: dict[str, Receiver] | None = None) -> list[DeliveryReport]:
    """One delivery run for ``period``: pushes reach ``receiver`` (as every department's system)."""
    def resolve(conn_id: str) -> ConnectionInfo:
        assert receiver is not None, f"no receiver runs for {conn_id}"
        spec = receiver.connection()
        return ConnectionInfo(conn_id=conn_id, login=spec["login"], password=spec["password"], extra=spec["extra"])

    if receivers is None:
        receivers = {name: declared.model_copy(update={"attempts": 2, "timeout": 0.2})
                     for name, declared in load_receivers().items()}
    return run_share_deliveries(resolve, period=period, url=env.url, receivers=receivers, sleep=lambda _: None)


def _approved_push_grant(env: SharingEnv, departments: list[str] | None = None) -> tuple[int, int]:
    """zjj's request for 自然人行政处罚 (two fields, the rows of ``departments``: scjgj's), approved by scjgj."""
    with env.connect() as conn:
        filed = file_request(conn, env.catalogue, env.policy, REQUESTER, resource_id="natural_person_penalty",
                             fields=["decision_no", "party_name"],
                             row_scope={"source_department": departments or ["scjgj"]},
                             purpose="建筑市场信用评价中核查从业人员行政处罚", duration_days=30, today=DAY)
        outcome = decide(conn, env.policy, OWNER_APPROVER, filed.request_id, approve=True)
    assert outcome.status == "approved" and outcome.grant_id
    return outcome.request_id, outcome.grant_id


def _kinds(env: SharingEnv, grant_id: int) -> list[str]:
    with env.connect() as conn:
        return [kind for (kind,) in conn.execute("select kind from sharing.audit where grant_id = %s order by seq",
                                                 (grant_id,))]


def test_approved_push_grant_is_delivered_once_per_period_and_stops_when_revoked(
        sharing_env: SharingEnv, receiver: SimulatedPlatform) -> None:
    env = sharing_env
    request_id, grant_id = _approved_push_grant(env)
    with env.connect() as conn:
        assert conn.execute("select delivery from sharing.grants where grant_id = %s", (grant_id,)).fetchone() == (
            "push",)

    # Approved → delivered: only the approved fields of the approved rows, with receipts.
    [first] = [r for r in _deliver(env, receiver, DAY) if r.grant_id == grant_id]
    assert first.records == 1 and first.sent.accepted == 1 and first.sent.batches_sent == 1
    assert list(receiver.records.values()) == [{
        "record_id": f"{grant_id}:2026-12-07:000001", "action": "upsert", "item_set": "natural_person_penalty",
        "data": {"decision_no": "杭市监罚〔2026〕1号", "party_name": "赵*"}}]
    assert receiver.batches_in_order == [f"{outbox_name(grant_id)}-00000001"]
    with psycopg.connect(env.url) as conn:
        receipts = conn.execute("select outcome, via from ops.push_receipts where target = %s",
                                (outbox_name(grant_id),)).fetchall()
    assert receipts == [("accepted", "submit")]

    # A rerun for the same period delivers nothing new.
    [again] = [r for r in _deliver(env, receiver, DAY) if r.grant_id == grant_id]
    assert again.records is None and again.sent.batches_sent == 0
    assert receiver.batches_in_order == [f"{outbox_name(grant_id)}-00000001"] and not receiver.duplicates()

    # The next period is queued, but the receiver is down through every retry: the batch waits, unsent.
    receiver.down = True
    [waiting] = [r for r in _deliver(env, receiver, date(2026, 12, 8)) if r.grant_id == grant_id]
    assert waiting.records == 1 and waiting.stopped and waiting.sent.accepted == 0
    # Revoked: the waiting batch is refused at once, and nothing more is delivered, whatever runs next.
    with env.connect() as conn:
        revoke(conn, STEWARD, request_id, "核查工作结束")
    receiver.down = False
    for period in (date(2026, 12, 8), date(2026, 12, 9)):
        assert [r for r in _deliver(env, receiver, period) if r.grant_id == grant_id] == []
    assert receiver.batches_in_order == [f"{outbox_name(grant_id)}-00000001"]
    with psycopg.connect(env.url) as conn:
        states = conn.execute("select b.state, b.last_error from ops.push_batches b where target = %s"
                              " order by batch_no", (outbox_name(grant_id),)).fetchall()
        periods = conn.execute("select period from sharing.deliveries where grant_id = %s order by period",
                               (grant_id,)).fetchall()
    assert states == [("done", None), ("refused", "共享授权已撤销")]
    assert periods == [(DAY,), (date(2026, 12, 8),)]

    # Every step in the audit chain: each period's read through the grant, its queueing, its sending.
    kinds = _kinds(env, grant_id)
    assert kinds[0] == "provisioned" and kinds[-1] == "revoked"
    assert kinds.count("delivery_read") == 2 and kinds.count("push_queued") == 2 and kinds.count("pushed") == 2


def test_the_push_component_reads_push_grants_only_and_no_credentials(sharing_env: SharingEnv) -> None:
    env = sharing_env
    with env.connect() as conn:
        database_only = file_request(conn, env.catalogue, env.policy, REQUESTER, resource_id="legal_person",
                                     fields=["uscc"], purpose="核验企业登记信息", duration_days=30)
    _, pushed = _approved_push_grant(env)
    with warehouse.connect(env.url, role="push") as conn:
        assert conn.execute(f"select count(*) from granted.grant_{pushed}_rows()").fetchone() == (1,)
    with warehouse.connect(env.url, role="push") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"select * from granted.grant_{database_only.grant_id}_rows()")
    for column in ("token_sha256", "role_name"):
        with warehouse.connect(env.url, role="push") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"select {column} from sharing.grants")
    with warehouse.connect(env.url, role="push") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("delete from sharing.audit")


def test_a_department_without_a_receiver_gets_a_file_each_period_until_revoked(sharing_env: SharingEnv,
                                                                              scratch_var: Path) -> None:
    from huiju.archive import read_archived

    env = sharing_env
    with env.connect() as conn:
        filed = file_request(conn, env.catalogue, env.policy, REQUESTER, resource_id="natural_person_penalty",
                             fields=["decision_no", "fine_amount_wan"], purpose="联合惩戒名单核查", duration_days=30,
                             today=DAY, receivers={})
        outcome = decide(conn, env.policy, OWNER_APPROVER, filed.request_id, approve=True)
        assert conn.execute("select delivery from sharing.grants where grant_id = %s",
                            (outcome.grant_id,)).fetchone() == ("export",)
    [exported] = [r for r in _deliver(env, receiver=None, period=DAY, receivers={}) if r.grant_id == outcome.grant_id]
    assert (exported.way, exported.records) == ("export", 2) and exported.file
    content = read_archived(exported.file).decode("utf-8")
    assert content == ("\ufeffdecision_no,fine_amount_wan\r\n杭市监罚〔2026〕1号,0.5\r\n杭税罚〔2026〕7号,1.2\r\n")
    # Once per period: a rerun exports nothing; revoked, nothing more.
    [again] = [r for r in _deliver(env, receiver=None, period=DAY, receivers={}) if r.grant_id == outcome.grant_id]
    assert again.records is None and again.file is None
    with env.connect() as conn:
        revoke(conn, STEWARD, outcome.request_id, "核查工作结束")
    assert [r for r in _deliver(env, receiver=None, period=date(2026, 12, 8), receivers={})
            if r.grant_id == outcome.grant_id] == []
    with psycopg.connect(env.url) as conn:
        assert conn.execute("select period, way, records from sharing.deliveries where grant_id = %s",
                            (outcome.grant_id,)).fetchall() == [(DAY, "export", 2)]
    assert _kinds(env, outcome.grant_id).count("exported") == 1


def test_the_push_command_delivers_the_day_once(sharing_env: SharingEnv, receiver: SimulatedPlatform,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import huiju.sharing.delivery
    from huiju.cli import main
    from huiju.settings import get_settings

    _, grant_id = _approved_push_grant(sharing_env, ["scjgj", "swj"])
    monkeypatch.setattr(huiju.sharing.delivery, "CHUNK", 1)  # the outbox written a record at a time
    monkeypatch.setenv("HUIJU_WAREHOUSE_URL", sharing_env.url)
    monkeypatch.setenv("AIRFLOW_CONN_HUIJU_SHARE_ZJJ", json.dumps(receiver.connection()))  # as Airflow reads it
    get_settings.cache_clear()
    try:
        assert main(["sharing", "push", "--day", "2026-12-10"]) == 0
        assert main(["sharing", "push", "--day", "2026-12-10"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert f"grant {grant_id} → zjj (push, 2026-12-10): 2 record(s) queued; 1 batch(es) sent, 2 accepted" in out
    assert f"grant {grant_id} → zjj (push, 2026-12-10): already queued; 0 batch(es) sent" in out
    assert [b for b in receiver.batches_in_order if b.startswith(f"{outbox_name(grant_id)}-")] == [
        f"{outbox_name(grant_id)}-00000001"]
