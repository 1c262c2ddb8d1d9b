"""A channel outage against real servers on loopback: bounded attempts while it is down, no flood when it is back.

A WeCom robot goes down with notices queued: three attempts open its circuit and the rest are
not tried (nor charged an attempt); while it is open nothing is tried. The reminder ladder moves
on meanwhile (催报 after the reminder). When the robot is back and the cool-down has passed, the
backlog drains at the circuit's rate, each obligation announced once, by its latest notice only.
The same for the mail relay (aiosmtpd stopped, then started) and a signed DingTalk robot.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from huiju_airflow.tasks import dingtalk_sender, email_sender, wecom_sender
from huiju_demo.mail_sink import running_mail_sink

from huiju.notices import Breaker, NoticeDraft, Recipient, deliver_pending, queue_notice, queue_notices
from tests.support.robots import RobotReceiver

ROBOT = "huiju_test_outage_wecom"
BREAKER = Breaker(threshold=3, cooldown=timedelta(minutes=5), per_minute={"wecom": 4, "email": 4, "dingtalk": 15})


@pytest.fixture
def url(make_database) -> str:
    return make_database("nout", migrated=True)


@pytest.fixture
def robot(monkeypatch: pytest.MonkeyPatch) -> Iterator[RobotReceiver]:
    with RobotReceiver("wecom", "outage-key") as receiver:
        monkeypatch.setenv(f"AIRFLOW_CONN_{ROBOT.upper()}", json.dumps(
            {"conn_type": "http", "host": receiver.url, "password": "outage-key", "extra": {"attempts": 1}}))
        yield receiver


def queue_ladder(conn: psycopg.Connection, recipient: Recipient, obligations: range, rank: int) -> None:
    level = {1: "提醒", 2: "催报"}[rank]
    for n in obligations:
        queue_notice(conn, dedupe_key=f"test:{n}:{rank}", kind="reminder", subject=f"【{level}】义务{n}",
                     body=f"第{n}项数据{level}。", recipients=[recipient], topic=f"obligation:{n}", rank=rank)
    conn.commit()


def cool_down_passes(conn: psycopg.Connection) -> None:
    """The clock moves on: the circuit's cool-down and its rate window are over."""
    conn.execute("update ops.notice_circuits set reopen_at = reopen_at - interval '1 hour',"
                 " window_started_at = now() - interval '2 minutes'")
    conn.commit()


def circuit(conn: psycopg.Connection, name: str) -> tuple:
    return conn.execute("select consecutive_failures, opened_at is not null, reopen_at > now()"
                        " from ops.notice_circuits where circuit = %s", (name,)).fetchone()


def drain(conn: psycopg.Connection, senders: dict) -> list[int]:
    """Runs until nothing is left, the rate window moving on between runs; what each run delivered."""
    delivered = []
    for _ in range(10):
        report = deliver_pending(conn, senders, breaker=BREAKER, retry_delay=timedelta(0))
        assert report.failed == 0, report.errors
        if not report.delivered:
            break
        delivered.append(report.delivered)
        cool_down_passes(conn)
    return delivered


def test_a_robot_outage_is_bounded_and_its_backlog_drains_without_a_flood(url: str, robot: RobotReceiver) -> None:
    senders = {"wecom": wecom_sender()}
    with psycopg.connect(url, autocommit=True) as conn:
        queue_ladder(conn, Recipient("wecom", ROBOT), range(10), rank=1)
        robot.stop()
        down = deliver_pending(conn, senders, breaker=BREAKER, retry_delay=timedelta(0))
        assert (down.delivered, down.failed, down.opened) == (0, 3, [f"wecom:{ROBOT}"])
        assert circuit(conn, f"wecom:{ROBOT}") == (3, True, True)
        assert deliver_pending(conn, senders, breaker=BREAKER, retry_delay=timedelta(0)).failed == 0  # open
        assert conn.execute("select sum(attempts) from ops.notice_deliveries").fetchone()[0] == 3

        # The ladder moves on during the outage: obligations 0-4 are now overdue (催报).
        queue_ladder(conn, Recipient("wecom", ROBOT), range(5), rank=2)
        robot.start()
        # A failed probe after the cool-down opens the circuit again, for twice as long.
        robot.answer_errcode = 45009
        cool_down_passes(conn)
        probe = deliver_pending(conn, senders, breaker=BREAKER, retry_delay=timedelta(0))
        assert (probe.failed, probe.superseded) == (1, 5)
        assert conn.execute("select cooldown from ops.notice_circuits").fetchone()[0] == timedelta(minutes=10)

        robot.answer_errcode = 0
        cool_down_passes(conn)
        runs = drain(conn, senders)
        assert circuit(conn, f"wecom:{ROBOT}") == (0, False, None)
    assert runs == [4, 4, 2]  # at most the circuit's rate per minute
    texts = [p.payload["markdown"]["content"] for p in robot.accepted()]
    assert len(texts) == 10
    assert sorted(t.split("\n")[0] for t in texts) == sorted(
        [f"#### 【催报】义务{n}" for n in range(5)] + [f"#### 【提醒】义务{n}" for n in range(5, 10)])


def test_a_mail_relay_outage_opens_the_circuit_and_mail_flows_again_at_a_bounded_rate(
        url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_mail_sink(tmp_path / "mail") as sink:
        for key, value in sink.airflow_env().items():
            monkeypatch.setenv(key, value)
    # The sink is stopped: the relay refuses connections.
    senders = {"email": email_sender()}
    with psycopg.connect(url, autocommit=True) as conn:
        queue_ladder(conn, Recipient("email", "dept@example.gov.cn"), range(6), rank=1)
        down = deliver_pending(conn, senders, breaker=BREAKER, retry_delay=timedelta(0))
        assert (down.delivered, down.failed, down.opened) == (0, 3, ["email"])
        with running_mail_sink(tmp_path / "mail2") as back:
            for key, value in back.airflow_env().items():
                monkeypatch.setenv(key, value)
            cool_down_passes(conn)
            runs = drain(conn, senders)
            assert runs == [4, 2] and back.count() == 6


def test_a_signed_dingtalk_robot_outage_is_bounded_and_the_backlog_arrives_signed(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = RobotReceiver("dingtalk", "dt-token", secret="SECoutage").start()
    connection = "huiju_test_outage_dingtalk"
    monkeypatch.setenv(f"AIRFLOW_CONN_{connection.upper()}", json.dumps(
        {"conn_type": "dingding", "host": receiver.url, "password": "dt-token", "extra": {"secret": "SECoutage"}}))
    senders = {"dingtalk": dingtalk_sender()}
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            queue_ladder(conn, Recipient("dingtalk", connection), range(6), rank=1)
            receiver.stop()
            down = deliver_pending(conn, senders, breaker=BREAKER, retry_delay=timedelta(0))
            assert (down.failed, down.opened) == (3, [f"dingtalk:{connection}"])
            receiver.start()
            assert deliver_pending(conn, senders, breaker=BREAKER).delivered == 0  # still cooling down
            cool_down_passes(conn)
            assert drain(conn, senders) == [6]  # DingTalk's rate is the default's 15 a minute
    finally:
        receiver.stop()
    assert len(receiver.accepted()) == len(receiver.posts) == 6  # every post signed as DingTalk checks it


def test_parallel_deliverers_share_one_circuits_rate(url: str, robot: RobotReceiver) -> None:
    from concurrent.futures import ThreadPoolExecutor  # why: only this test runs deliverers side by side

    with psycopg.connect(url, autocommit=True) as conn:
        queue_ladder(conn, Recipient("wecom", ROBOT), range(12), rank=1)

    def deliverer(_: int) -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            return deliver_pending(conn, {"wecom": wecom_sender()}, breaker=BREAKER).delivered

    with ThreadPoolExecutor(4) as pool:
        delivered = sum(pool.map(deliverer, range(4)))
    assert delivered == len(robot.accepted()) == 4  # the circuit's minute, however many deliverers


def test_the_set_based_ladder_queue_supersedes_too(url: str, robot: RobotReceiver) -> None:
    recipient = (Recipient("wecom", ROBOT),)
    with psycopg.connect(url, autocommit=True) as conn:
        queue_notices(conn, [NoticeDraft(f"monitor:{level}:swj:swj_penalty:2026-11", f"monitor_{level}",
                                         f"【{level}】", "正文", recipient, "swj", "swj_penalty",
                                         topic="monitor:swj:swj_penalty:2026-11", rank=rank)
                             for rank, level in enumerate(("remind", "overdue"), 1)])
        report = deliver_pending(conn, {"wecom": wecom_sender()}, breaker=BREAKER)
    assert (report.delivered, report.superseded) == (1, 1)
    assert [p.payload["markdown"]["content"].split("\n")[0] for p in robot.accepted()] == ["#### 【overdue】"]
