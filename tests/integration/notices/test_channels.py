"""Every notice channel against a REAL server on loopback, through the senders the Airflow side uses.

E-mail goes through the smtp provider's ``SmtpHook`` to aiosmtpd; DingTalk through the dingding
provider's hook with the plugin's signature (加签) to a receiver that checks it as DingTalk does;
WeCom through the plugin's hook and the plain sender to a receiver that checks its payload. A
department receives its notices through the channels its YAML chose.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from huiju_airflow.robots import WeComNotifier
from huiju_airflow.tasks import notice_senders
from huiju_demo.mail_sink import MailSink

from huiju.notices import Recipient, deliver_pending, department_recipients, queue_notice
from huiju.registry import NoticeChannels, Registry, load_registry
from huiju.settings import get_settings
from tests.support.robots import RobotReceiver

DINGTALK_CONN, WECOM_CONN = "huiju_test_swj_dingtalk", "huiju_test_swj_wecom"
SECRET = "SECtest0123456789abcdef"


@pytest.fixture(scope="module")
def url(make_database) -> str:
    """A warehouse of this module's own."""
    return make_database("nch", migrated=True)


@pytest.fixture
def dingtalk() -> Iterator[RobotReceiver]:
    with RobotReceiver("dingtalk", "dt-token", secret=SECRET) as receiver:
        yield receiver


@pytest.fixture
def wecom() -> Iterator[RobotReceiver]:
    with RobotReceiver("wecom", "wc-key-0001") as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def connections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sink: MailSink, dingtalk: RobotReceiver,
                wecom: RobotReceiver) -> Iterator[None]:
    """The SMTP sink and both robots as Airflow Connections (AIRFLOW_CONN_*), var/ in a scratch folder."""
    monkeypatch.setenv("HUIJU_VAR", str(tmp_path / "var"))
    for key, value in sink.airflow_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(f"AIRFLOW_CONN_{DINGTALK_CONN.upper()}", json.dumps(
        {"conn_type": "dingding", "host": dingtalk.url, "password": "dt-token", "extra": {"secret": SECRET}}))
    monkeypatch.setenv(f"AIRFLOW_CONN_{WECOM_CONN.upper()}", json.dumps(
        {"conn_type": "http", "host": wecom.url, "password": "wc-key-0001"}))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def registry_with(channels: NoticeChannels | None = None) -> Registry:
    """The real registry; 税务局 with both robots and, if given, its channel preferences."""
    real = load_registry()
    update: dict = {"dingtalk_connection": DINGTALK_CONN, "wecom_connection": WECOM_CONN}
    if channels is not None:
        update["channels"] = channels
    swj = real.departments["swj"].model_copy(update=update)
    return real.model_copy(update={"departments": {**real.departments, "swj": swj}})


def queue(url: str, key: str, recipients: list[Recipient]) -> None:
    with psycopg.connect(url) as conn:
        assert queue_notice(conn, dedupe_key=key, kind="test", department="swj",
                            subject="【催报】税务局《行政处罚》2026年11月",
                            body="贵单位2026年11月的行政处罚数据尚未报送。\n截止日期：2026-12-07。",
                            recipients=recipients) is not None


def test_a_notice_reaches_email_signed_dingtalk_and_wecom_once_each(
        url: str, sink: MailSink, dingtalk: RobotReceiver, wecom: RobotReceiver) -> None:
    recipients = department_recipients(registry_with(), "swj")
    assert {r.channel for r in recipients} == {"email", "dingtalk", "wecom"}
    queue(url, "test:all-channels", recipients)
    with psycopg.connect(url) as conn:
        report = deliver_pending(conn, notice_senders())
        assert report.failed == 0, report.errors
        assert deliver_pending(conn, notice_senders()).delivered == 0  # delivered once, never again
    emails = sum(1 for r in recipients if r.channel == "email")
    assert report.delivered == emails + 2
    assert len(sink.messages) == emails
    message = sink.messages[0]
    assert message["X-Huiju-Notice"] == "test:all-channels" and "催报" in str(message["Subject"])
    (signed,) = dingtalk.posts
    assert signed.errcode == 0 and {"timestamp", "sign"} <= set(signed.query)  # the receiver verified the 加签
    assert signed.payload["markdown"]["title"].startswith("【催报】税务局")
    assert "截止日期：2026-12-07" in signed.payload["markdown"]["text"]
    (posted,) = wecom.posts
    assert posted.errcode == 0 and posted.payload["msgtype"] == "markdown"
    assert posted.payload["markdown"]["content"].startswith("#### 【催报】税务局《行政处罚》2026年11月")
    assert posted.headers["X-Huiju-Message-Id"].startswith("<notice-")


def test_a_wrong_dingtalk_secret_is_refused_and_the_delivery_stays_pending(
        url: str, dingtalk: RobotReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{DINGTALK_CONN.upper()}", json.dumps(
        {"conn_type": "dingding", "host": dingtalk.url, "password": "dt-token", "extra": {"secret": "SECwrong"}}))
    queue(url, "test:wrong-secret", [Recipient("dingtalk", DINGTALK_CONN)])
    with psycopg.connect(url) as conn:
        report = deliver_pending(conn, {"dingtalk": notice_senders()["dingtalk"]})
        row = conn.execute("select attempts, delivered_at, last_error from ops.notice_deliveries d join ops.notices n"
                           " using (notice_id) where dedupe_key = 'test:wrong-secret'").fetchone()
    assert (report.delivered, report.failed) == (0, 1)
    assert [p.errcode for p in dingtalk.posts] == [310000]
    assert row[:2] == (1, None) and "310000" in row[2]


def test_a_department_gets_only_the_channels_it_chose() -> None:
    registry = registry_with(NoticeChannels(contacts=("wecom",), leader=("email", "dingtalk")))
    assert department_recipients(registry, "swj") == [Recipient("wecom", WECOM_CONN)]
    swj = registry.departments["swj"]
    assert swj.channels_for("leader") == ("email", "dingtalk")


def test_the_wecom_notifier_posts_its_rendered_content(wecom: RobotReceiver) -> None:
    notifier = WeComNotifier(wecom_conn_id=WECOM_CONN, content="任务 {{ task_id }} 失败", msgtype="text")
    notifier.render_template_fields({"task_id": "validate"})
    notifier.notify({})
    (posted,) = wecom.posts
    assert posted.payload == {"msgtype": "text", "text": {"content": "任务 validate 失败"}}
