"""Which channels a department's notices take (its YAML), the stewards' robots, and a notice as robot markdown."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from huiju.notices import (
    Outgoing,
    Recipient,
    channel_recipients,
    circuit_of,
    leader_recipients,
    robot_markdown,
    steward_recipients,
)
from huiju.registry import Department, Registry


def department(**fields: object) -> Department:
    return Department.model_validate({"code": "swj", "name": "税务局",
                                      "contacts": [{"name": "赵敏", "email": "swj-data@example.gov.cn"}], **fields})


def test_by_default_a_department_gets_email_and_every_robot_it_has() -> None:
    assert department().channels_for("contacts") == ("email",)
    both = department(dingtalk_connection="dt", wecom_connection="wc")
    assert both.channels_for("contacts") == ("email", "dingtalk", "wecom")
    assert channel_recipients(both, "leader", ["leader@example.gov.cn"]) == [
        Recipient("email", "leader@example.gov.cn"), Recipient("dingtalk", "dt"), Recipient("wecom", "wc")]


def test_declared_channels_are_the_only_ones_used() -> None:
    swj = department(wecom_connection="wc", dingtalk_connection="dt",
                     channels={"contacts": ["wecom"], "leader": ["email"]})
    assert channel_recipients(swj, "contacts", ["swj-data@example.gov.cn"]) == [Recipient("wecom", "wc")]
    assert channel_recipients(swj, "leader", ["leader@example.gov.cn", None]) == [
        Recipient("email", "leader@example.gov.cn")]


@pytest.mark.parametrize("channels, message", [
    ({"contacts": ["wecom"]}, "channels.contacts names wecom but wecom_connection is not set"),
    ({"leader": ["dingtalk"]}, "channels.leader names dingtalk but dingtalk_connection is not set"),
    ({"contacts": ["sms"]}, "Input should be 'email', 'dingtalk' or 'wecom'"),
])
def test_a_robot_without_its_connection_or_an_unknown_channel_is_a_config_error(channels: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        department(channels=channels)


def test_the_stewards_robots_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIJU_STEWARD_EMAILS", "a@example.gov.cn")
    monkeypatch.setenv("HUIJU_STEWARD_WECOM", "huiju_stewards_wecom")
    monkeypatch.delenv("HUIJU_STEWARD_DINGTALK", raising=False)
    assert steward_recipients() == [Recipient("email", "a@example.gov.cn"), Recipient("wecom", "huiju_stewards_wecom")]


def test_one_circuit_per_mail_relay_and_per_robot() -> None:
    assert circuit_of("email", "a@example.gov.cn") == circuit_of("email", "b@example.gov.cn") == "email"
    assert circuit_of("wecom", "huiju_swj_wecom") == "wecom:huiju_swj_wecom"


def test_a_notice_as_robot_markdown_keeps_its_paragraphs_and_says_where_the_attachment_went() -> None:
    outgoing = Outgoing(notice_id=1, dedupe_key="k", kind="feedback", department="swj", channel="wecom",
                        recipient="wc", subject="【问题数据反馈】税务局", body="第一段。\n第二段。",
                        attachment=Path("/tmp/x.xlsx"))
    text = robot_markdown(outgoing)
    assert text.startswith("#### 【问题数据反馈】税务局\n\n第一段。\n\n第二段。")
    assert text.endswith("（附件已通过电子邮件发送给贵单位的联系人）")


def test_the_leader_hears_through_the_channels_chosen_for_the_leader() -> None:
    swj = department(leader={"name": "钱局", "email": "leader@example.gov.cn"}, wecom_connection="wc",
                     channels={"contacts": ["email"], "leader": ["email", "wecom"]})
    registry = Registry.model_construct(datasets={}, departments={"swj": swj}, sources={})
    assert leader_recipients(registry, "swj") == [Recipient("email", "leader@example.gov.cn"), Recipient("wecom", "wc")]
    assert leader_recipients(registry, "nobody") == []
