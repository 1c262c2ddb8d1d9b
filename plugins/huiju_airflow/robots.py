"""Group robots as Airflow hooks and notifiers: DingTalk with its signature (加签), WeCom (企业微信).

* :class:`SignedDingdingHook` is the dingding provider's ``DingdingHook`` plus the 加签 query
  parameters (``timestamp``, ``sign``) when the Connection's extra holds the robot's ``secret``;
  a robot without one is posted to as before (token only).
* :class:`WeComHook` reads a WeCom robot's Connection (password: the webhook key; host: the API
  base, default ``https://qyapi.weixin.qq.com``; extra ``timeout``, ``attempts``) in ``get_conn()`` and hands it
  to the plain sender :class:`huiju_connectors.robots.WeComRobot`.
* :class:`SignedDingdingNotifier` and :class:`WeComNotifier` are ``BaseNotifier`` s in the
  providers' style (``on_failure_callback=WeComNotifier(wecom_conn_id=..., content=...)``).

Connections (see the README, "Notices"): DingTalk ``conn_type`` dingding, ``password`` the
access token, ``extra`` ``{"secret": "SEC…"}``; WeCom any ``conn_type`` (``http`` will do),
``password`` the webhook key.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.providers.dingding.hooks.dingding import DingdingHook
from airflow.sdk import BaseHook, BaseNotifier
from huiju_connectors.retry import RetryPolicy
from huiju_connectors.robots import WECOM_API, RobotMessage, WeComRobot, dingtalk_signature


class SignedDingdingHook(DingdingHook):
    """``DingdingHook`` that signs each request (加签) with the ``secret`` in its Connection's extra."""

    def _get_endpoint(self) -> str:
        endpoint = super()._get_endpoint()
        secret = self.get_connection(self.http_conn_id).extra_dejson.get("secret")
        if not secret:
            return endpoint
        # Signed per request: DingTalk refuses a timestamp more than an hour away from its clock.
        timestamp, sign = dingtalk_signature(str(secret))
        return f"{endpoint}&timestamp={timestamp}&sign={sign}"


class WeComHook(BaseHook):
    """A WeCom group robot (企业微信群机器人) from an Airflow Connection: password the webhook key."""

    conn_name_attr = "wecom_conn_id"
    default_conn_name = "wecom_default"
    conn_type = "wecom"
    hook_name = "WeCom Group Robot (企业微信群机器人)"

    def __init__(self, wecom_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wecom_conn_id = wecom_conn_id

    def get_conn(self) -> WeComRobot:
        """The robot its Connection names (read here, never in ``__init__``)."""
        conn = self.get_connection(self.wecom_conn_id)
        if not conn.password:
            raise ValueError(f"Connection {self.wecom_conn_id!r}: the password must hold the WeCom webhook key")
        host = conn.host or WECOM_API
        if "://" not in host:
            host = f"https://{host}"
        if conn.port:
            host = f"{host}:{conn.port}"
        extra = conn.extra_dejson
        # Immediate retries only for what surely was not posted (see huiju_connectors.robots); the outbox retries later.
        policy = RetryPolicy(attempts=int(extra.get("attempts", 3)), base_delay=1.0, max_delay=10.0)
        return WeComRobot(conn.password, base_url=host, timeout=float(extra.get("timeout", 10)), policy=policy)

    def send(self, content: str, *, msgtype: str = "markdown", message_id: str = "") -> None:
        """Post one message to the robot (see :meth:`huiju_connectors.robots.WeComRobot.send`)."""
        self.get_conn().send(RobotMessage(content=content, message_id=message_id, msgtype=msgtype))  # type: ignore[arg-type]


class WeComNotifier(BaseNotifier):
    """Posts ``content`` (templated) to a WeCom group robot, e.g. as a DAG's ``on_failure_callback``."""

    template_fields: Sequence[str] = ("content", "wecom_conn_id", "message_id")

    def __init__(self, *, content: str, wecom_conn_id: str = WeComHook.default_conn_name,
                 msgtype: str = "markdown", message_id: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.content = content
        self.wecom_conn_id = wecom_conn_id
        self.msgtype = msgtype
        self.message_id = message_id

    @cached_property
    def hook(self) -> WeComHook:
        """The robot's hook."""
        return WeComHook(wecom_conn_id=self.wecom_conn_id)

    def notify(self, context: Any) -> None:
        """Send the rendered message."""
        self.hook.send(self.content, msgtype=self.msgtype, message_id=self.message_id)


class SignedDingdingNotifier(BaseNotifier):
    """Posts ``text`` (templated markdown) to a DingTalk group robot, signed when its Connection has a secret."""

    template_fields: Sequence[str] = ("title", "text", "dingding_conn_id")

    def __init__(self, *, title: str, text: str, dingding_conn_id: str = "dingding_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.text = text
        self.dingding_conn_id = dingding_conn_id

    def notify(self, context: Any) -> None:
        """Send the rendered message."""
        SignedDingdingHook(dingding_conn_id=self.dingding_conn_id, message_type="markdown",
                           message={"title": self.title, "text": self.text}).send()


send_wecom_notification = WeComNotifier
send_dingding_notification = SignedDingdingNotifier
