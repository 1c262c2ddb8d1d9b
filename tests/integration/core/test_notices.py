"""Notices (ops.notices) delivered to REAL servers on loopback: an SMTP server (aiosmtpd) and an HTTP server
standing in for DingTalk's robot API, through the Airflow providers' hooks (SmtpHook, DingdingHook).

A held batch tells the department and the stewards; a feedback workbook of a batch that came by
FTP is announced by e-mail with a link to the departments' portal, never attached (it holds the IDs
the department sent); a file-drop problem becomes a notice once; ID and mobile
numbers never appear in clear; delivering twice sends one e-mail; a failed send is retried and,
once delivered, never sent again.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import openpyxl
import psycopg
import pytest
from huiju_airflow.tasks import dingtalk_sender, email_sender
from huiju_demo.bulk import valid_id_number, write_penalty_csv
from huiju_demo.mail_sink import MailSink

from huiju.feedback import ROWS_SHEET, build_feedback
from huiju.landing import land_file
from huiju.notices import Outgoing, Recipient, deliver_pending, queue_notice, run_notices
from huiju.registry import Registry, load_registry
from huiju.settings import get_settings
from huiju.validation import validate_load
from tests.support.robots import RobotReceiver

ROBOT_CONN = "huiju_test_cgj_robot"
TOKEN = "test-robot-token"


@pytest.fixture(scope="module")
def url(make_database) -> str:
    """A warehouse of this module's own: no other test's pending notices."""
    return make_database("nt", migrated=True)


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The real registry, with a DingTalk robot named for 城市管理局."""
    real = load_registry()
    cgj = real.departments["cgj"].model_copy(update={"dingtalk_connection": ROBOT_CONN})
    return real.model_copy(update={"departments": {**real.departments, "cgj": cgj}})


@pytest.fixture
def robot() -> Iterator[RobotReceiver]:
    """An HTTP server standing in for DingTalk's robot API (token checked, no 加签 secret)."""
    with RobotReceiver("dingtalk", TOKEN) as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, sink: MailSink,
                robot: RobotReceiver) -> Iterator[Path]:
    """var/ in a scratch folder; the sink and the robot as Airflow Connections (AIRFLOW_CONN_*)."""
    var = tmp_path_factory.mktemp("var")
    monkeypatch.setenv("HUIJU_VAR", str(var))
    for key, value in sink.airflow_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(f"AIRFLOW_CONN_{ROBOT_CONN.upper()}", json.dumps(
        {"conn_type": "dingding", "host": robot.url, "password": TOKEN}))
    monkeypatch.setenv("HUIJU_STEWARD_EMAILS", "steward-a@example.gov.cn,steward-b@example.gov.cn")
    get_settings.cache_clear()
    yield var
    get_settings.cache_clear()


def senders() -> dict:
    return {"email": email_sender(), "dingtalk": dingtalk_sender()}


def _text(message: object) -> str:
    """Subject and every text part of a received e-mail, decoded."""
    parts = [str(message["Subject"])]
    for part in message.walk():  # type: ignore[attr-defined]
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)


def test_held_batch_and_its_feedback_reach_the_department_by_email_and_dingtalk_once(
        url: str, registry: Registry, tmp_path: Path, sink: MailSink, robot: RobotReceiver) -> None:
    source = registry.source("cgj_penalty")  # FTP: its feedback is downloaded from the portal, linked by e-mail
    h = {field: header for header, field in source.columns.items()}
    broken = {i: {h["party_name"]: ""} for i in range(5)}
    path = write_penalty_csv(tmp_path / "cgj_penalty_held.csv", source, 20, tag="NT", overrides=broken)
    with psycopg.connect(url) as conn:
        load_id = land_file(conn, registry, source, path).load_id
        assert validate_load(conn, registry, load_id, run_gx=False).status == "held"
        feedback = build_feedback(conn, registry, load_id)
        assert feedback is not None and feedback.channel == "portal"
        assert conn.execute("select channel from ops.feedback where load_id = %s", (load_id,)).fetchall() == [
            ("portal",)]
        # The outbox's workbook is the platform's alone from its creation (whatever this process's umask).
        assert stat.S_IMODE(feedback.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(feedback.path.parent.stat().st_mode) == 0o700
        conn.commit()

        first = deliver_pending(conn, senders())
        again = deliver_pending(conn, senders())
    assert (first.delivered, first.failed, again.delivered) == (6, 0, 0)  # 2 notices; see the recipients below

    by_kind: dict[str, list] = {}
    for message in sink.messages:
        by_kind.setdefault(message["X-Huiju-Notice"].split(":")[0], []).append(message)
    held, fed_back = by_kind["held"], by_kind["feedback"]
    assert sorted(m["To"] for m in held) == ["cgj-data@example.gov.cn", "steward-a@example.gov.cn",
                                             "steward-b@example.gov.cn"]
    assert [m["To"] for m in fed_back] == ["cgj-data@example.gov.cn"]
    text = _text(held[0])
    assert "暂缓入库" in text and "城管行政处罚" in text and "5/20" in text and "必填项为空：5行" in text

    # No attachment: the workbook (the rows the department sent) stays behind the portal's login.
    assert not list(fed_back[0].iter_attachments())
    text = _text(fed_back[0])
    assert "cgj_penalty_held_问题数据反馈.xlsx" in text and "不作为邮件附件发送" in text
    assert f"{get_settings().portal_url}history/{load_id}" in text  # the batch's page, where it is downloaded
    assert openpyxl.load_workbook(feedback.path)[ROWS_SHEET].max_row == 6  # header and the five problem rows

    # DingTalk: the robot got both notices (markdown), token in the query string.
    posts = robot.accepted()
    assert len(posts) == 2 and all(p.query == {"access_token": TOKEN} for p in posts)
    assert {p.payload["msgtype"] for p in posts} == {"markdown"}
    assert not any("附件已通过电子邮件" in p.payload["markdown"]["text"] for p in posts)
    assert any(f"/history/{load_id}" in p.payload["markdown"]["text"] for p in posts)


def test_sensitive_values_are_masked_in_every_channel(url: str, registry: Registry, sink: MailSink,
                                                      robot: RobotReceiver) -> None:
    id_number, mobile = valid_id_number(7), "13912345678"
    with psycopg.connect(url) as conn:
        notice = queue_notice(conn, dedupe_key="test:masking", kind="test", department="cgj",
                              subject=f"核对 {mobile}", body=f"法定代表人证件号码 {id_number}，电话 {mobile}。",
                              recipients=[Recipient("email", "cgj-data@example.gov.cn"),
                                          Recipient("dingtalk", ROBOT_CONN)])
        assert notice is not None
        assert queue_notice(conn, dedupe_key="test:masking", kind="test", subject="x", body="y",
                            recipients=[Recipient("email", "z@example.gov.cn")]) is None  # once per key
        conn.commit()
        assert deliver_pending(conn, senders()).delivered == 2
        stored = conn.execute("select subject || body from ops.notices where notice_id = %s", (notice,)).fetchone()[0]
    received = _text(sink.messages[0]) + json.dumps([p.payload for p in robot.posts], ensure_ascii=False) + stored
    assert id_number not in received and mobile not in received
    assert f"{id_number[:6]}********{id_number[-4:]}" in received and "139****5678" in received


def test_a_failed_send_is_retried_and_a_delivered_notice_is_never_sent_twice(
        url: str, registry: Registry, sink: MailSink) -> None:
    calls: list[str] = []
    real = email_sender()

    def flaky(outgoing: Outgoing) -> None:
        calls.append(outgoing.recipient)
        if len(calls) == 1:
            raise ConnectionRefusedError("relay down 13800000005")
        real(outgoing)

    with psycopg.connect(url) as conn:
        queue_notice(conn, dedupe_key="test:retry", kind="test", subject="重试", body="正文",
                     recipients=[Recipient("email", "retry@example.gov.cn")])
        conn.commit()
        first = deliver_pending(conn, {"email": flaky}, retry_delay=timedelta(0))
        assert (first.delivered, first.failed) == (0, 1) and "138****0005" in first.errors[0]
        second = deliver_pending(conn, {"email": flaky}, retry_delay=timedelta(0))
        third = deliver_pending(conn, {"email": flaky}, retry_delay=timedelta(0))
        row = conn.execute("select attempts, last_error, delivered_at is not null from ops.notice_deliveries d"
                           " join ops.notices n using (notice_id) where n.dedupe_key = 'test:retry'").fetchone()
    assert (second.delivered, third.delivered) == (1, 0)
    assert row == (2, None, True)
    assert calls == ["retry@example.gov.cn", "retry@example.gov.cn"]
    assert [m["To"] for m in sink.messages] == ["retry@example.gov.cn"]


def test_file_drop_problems_become_one_notice_each(url: str, registry: Registry, sink: MailSink) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "insert into ops.remote_file_events (source_id, department, remote_name, kind, detail, notice)"
            " values ('cgj_penalty', 'cgj', 'cgj_penalty_13800000005.csv', 'marker_mismatch',"
            " 'size 10 != 12', '文件「cgj_penalty_13800000005.csv」与其完成标记中的大小不符，请重新上传。')")
        conn.commit()
        report = run_notices(conn, registry, senders())
        assert report.delivered == 2  # the department's address and its robot
        assert run_notices(conn, registry, senders()).delivered == 0
        assert conn.execute("select count(*) from ops.remote_file_events where notified_at is null").fetchone()[0] == 0
        assert conn.execute("select count(*) from ops.notices where kind = 'remote_file'").fetchone()[0] == 1
    (message,) = sink.messages
    text = _text(message)
    assert "完成标记与文件不符" in message["Subject"] and "13800000005" not in text and "138****0005" in text


def test_feedback_of_an_sftp_batch_goes_back_to_the_departments_sftp_outbox(
        url: str, registry: Registry, tmp_path: Path, sink: MailSink, monkeypatch: pytest.MonkeyPatch) -> None:
    from huiju_demo.bulk import write_penalty_xlsx
    from huiju_demo.sftp_server import serve_sftp

    from huiju.channels import ConnectionInfo
    from huiju.pipeline import send_feedback

    source = registry.source("zjj_penalty")
    path = write_penalty_xlsx(tmp_path / "zjj_penalty_20260305.xlsx", source, 10, tag="SF", title="行政处罚")
    workbook = openpyxl.load_workbook(path)
    column = list(source.columns).index(source.header_for_field["party_name"]) + 1
    workbook.active.cell(row=3, column=column).value = None  # first record: a required field left blank
    workbook.save(path)
    monkeypatch.setenv("HUIJU_WAREHOUSE_URL", url)
    get_settings.cache_clear()
    with psycopg.connect(url) as conn:
        load_id = land_file(conn, registry, source, path).load_id
        assert validate_load(conn, registry, load_id, run_gx=False).rows_quarantined == 1
        conn.commit()
    root = tmp_path / "sftp"
    (root / "upload").mkdir(parents=True)
    with serve_sftp(root, user="zjj", password="zjj-test-pw") as server:
        connection = ConnectionInfo("huiju_zjj_sftp", server.host, server.port, "zjj", "zjj-test-pw",
                                    extra={"host_key": server.pin})
        assert len(send_feedback(source.id, registry, connection)) == 1
        assert send_feedback(source.id, registry, connection) == []  # once per batch
    uploaded = root / "upload" / "outbox" / "zjj_penalty_20260305_问题数据反馈.xlsx"
    assert openpyxl.load_workbook(uploaded)[ROWS_SHEET].max_row == 2
    assert not list((root / "upload" / "outbox").glob("*.part"))
    with psycopg.connect(url) as conn:
        assert conn.execute("select channel, path from ops.feedback where load_id = %s", (load_id,)).fetchall() == [
            ("sftp", "upload/outbox/zjj_penalty_20260305_问题数据反馈.xlsx")]
        conn.commit()
        assert deliver_pending(conn, senders()).delivered == 1  # the department is told where, no attachment
    (message,) = sink.messages
    assert not list(message.iter_attachments()) and "upload/outbox" in _text(message)


def test_without_an_smtp_connection_emails_stay_queued(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from huiju_airflow.tasks import notice_senders

    monkeypatch.delenv("AIRFLOW_CONN_HUIJU_SMTP")
    senders_now = notice_senders()
    assert set(senders_now) == {"dingtalk", "wecom"}
    with psycopg.connect(url) as conn:
        queue_notice(conn, dedupe_key="test:no-smtp", kind="test", subject="待发", body="正文",
                     recipients=[Recipient("email", "queued@example.gov.cn")])
        conn.commit()
        assert deliver_pending(conn, senders_now).delivered == 0
        assert conn.execute("select attempts, delivered_at from ops.notice_deliveries d join ops.notices n"
                            " using (notice_id) where dedupe_key = 'test:no-smtp'").fetchone() == (0, None)


def test_feedback_of_a_rest_page_is_a_portal_link_with_a_clean_name(
        url: str, registry: Registry, sink: MailSink) -> None:
    import datetime

    from huiju_demo.bulk import penalty_row

    from huiju.landing import land_records

    source = registry.source("jtj_penalty")  # REST: the reference is a page URL
    records: list[dict[str, object]] = [penalty_row(source, serial, "RP") for serial in range(20)]
    records[0][source.header_for_field["party_name"]] = ""  # one problem row in 20: within tolerance
    with psycopg.connect(url) as conn:
        landed = land_records(conn, registry, source, reference="xzcf?pageNum=1&pageSize=500",
                              content_id="test-rest-page-1", records=records, data_date=datetime.date(2026, 3, 5))
        assert validate_load(conn, registry, landed.load_id, run_gx=False).rows_quarantined == 1
        feedback = build_feedback(conn, registry, landed.load_id)
        assert feedback is not None and feedback.channel == "portal"
        assert feedback.path.name == f"jtj_penalty_20260305_{landed.load_id[-6:]}_问题数据反馈.xlsx"
        conn.commit()
        assert deliver_pending(conn, {"email": email_sender()}).failed == 0
    (message,) = [m for m in sink.messages if m["X-Huiju-Notice"] == f"feedback:{landed.load_id}"]
    assert not list(message.iter_attachments())
    assert feedback.path.name in _text(message) and f"/history/{landed.load_id}" in _text(message)
