"""Group robots (群机器人) of DingTalk (钉钉) and WeCom (企业微信): the signature and a plain sender.

DingTalk robots in the signed-request mode (加签) take two more query parameters on every
message: ``timestamp`` (milliseconds) and ``sign``, the URL-encoded base64 HMAC-SHA256 of
``"<timestamp>\\n<secret>"`` keyed with the secret; a request more than an hour off is refused
(:func:`dingtalk_signature`). The Airflow dingding provider's hook posts the message itself; the
plugin adds these parameters (``huiju_airflow.robots``).

WeCom robots have no Airflow provider: :class:`WeComRobot` posts ``{"msgtype": ..., ...}`` to
``<base>/cgi-bin/webhook/send?key=<key>`` and checks the answer's ``errcode``. A robot keeps no
idempotency key, so what can be retried at once is only what surely did not arrive: a refused
or timed-out connection, HTTP 429/5xx, or errcode -1 (busy) / 45009 (rate limit). A read that
timed out after the request was sent may have been posted: it is not retried here, the notice
outbox retries it later (at least once, never a burst). Each message carries its id in the
``X-Huiju-Message-Id`` header and, in the text, the notice's own reference.

No Airflow here: the key, the base URL and the policy are handed in by the caller.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from huiju_connectors.retry import GaveUp, RetryPolicy

__all__ = ["DINGTALK_API", "WECOM_API", "RobotError", "RobotMessage", "WeComRobot", "dingtalk_signature",
           "truncate_utf8"]

log = logging.getLogger(__name__)

DINGTALK_API = "https://oapi.dingtalk.com"
WECOM_API = "https://qyapi.weixin.qq.com"
#: WeCom's limits on one message's content, in UTF-8 bytes.
WECOM_LIMITS = {"markdown": 4096, "text": 2048}
#: WeCom answers worth another attempt: -1 system busy, 45009 over the robot's rate (20 messages a minute).
WECOM_RETRY_ERRCODES = frozenset({-1, 45009})
TRUNCATED = "\n…（内容过长，已截断）"


def dingtalk_signature(secret: str, timestamp_ms: int | None = None, *,
                       clock: Callable[[], float] = time.time) -> tuple[str, str]:
    """``(timestamp, sign)`` for a DingTalk robot in 加签 mode, both ready for the query string.

    ``sign`` is already percent-encoded (DingTalk's own recipe: ``quote_plus`` of the base64 digest).
    """
    timestamp = str(timestamp_ms if timestamp_ms is not None else int(clock() * 1000))
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return timestamp, urllib.parse.quote_plus(base64.b64encode(digest))


def truncate_utf8(text: str, limit: int, marker: str = TRUNCATED) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, ending with ``marker`` when cut (never mid-character)."""
    if len(text.encode()) <= limit:
        return text
    room = limit - len(marker.encode())
    return text.encode()[:room].decode(errors="ignore") + marker


class RobotError(Exception):
    """A robot refused a message or could not be reached; ``retryable`` says whether trying again now may help."""

    def __init__(self, reason: str, *, errcode: int | None = None, retryable: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.errcode = errcode
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class RobotMessage:
    """One message to a group robot: markdown (the default) or plain text, and the id that names it."""

    content: str
    message_id: str = ""
    msgtype: Literal["markdown", "text"] = "markdown"

    def wecom_payload(self) -> dict[str, Any]:
        """The JSON WeCom's webhook takes, the content cut to WeCom's limit for its type."""
        return {"msgtype": self.msgtype, self.msgtype: {"content": truncate_utf8(self.content,
                                                                                WECOM_LIMITS[self.msgtype])}}


def _sure_not_sent(exc: BaseException) -> bool:
    """True for failures where the robot cannot have posted the message (so an immediate retry cannot double it)."""
    if isinstance(exc, RobotError):
        return exc.retryable
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


class WeComRobot:
    """A WeCom group robot (企业微信群机器人), reached at its webhook with its key."""

    def __init__(self, key: str, *, base_url: str = WECOM_API, timeout: float = 10.0,
                 policy: RetryPolicy | None = None, client: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not key:
            raise ValueError("a WeCom robot needs its webhook key")
        self._url = f"{base_url.rstrip('/')}/cgi-bin/webhook/send"
        self._key = key
        self._client = client
        self._timeout = timeout
        self._retrier = (policy or RetryPolicy(attempts=3, base_delay=1.0, max_delay=10.0)).retrier(
            _sure_not_sent, sleep=sleep, logger=log)

    @property
    def shown_url(self) -> str:
        """The webhook's address without its key (the key is the robot's only secret)."""
        return f"{self._url}?key=***"

    def send(self, message: RobotMessage) -> None:
        """Post ``message``; raises :class:`RobotError` when the robot refused it or every attempt failed."""
        headers = {"X-Huiju-Message-Id": message.message_id} if message.message_id else {}
        payload = message.wecom_payload()

        def attempt() -> None:
            client = self._client or httpx.Client(timeout=self._timeout)
            try:
                response = client.post(self._url, params={"key": self._key}, json=payload, headers=headers)
            finally:
                if self._client is None:
                    client.close()
            self._check(response)

        try:
            self._retrier(attempt, f"WeCom robot {self.shown_url}")
        except GaveUp as gave_up:
            raise RobotError(f"WeCom robot {self.shown_url}: gave up after {gave_up.attempts} attempts: "
                             f"{gave_up.last}", retryable=True) from gave_up.last
        except httpx.HTTPError as exc:
            # Never the request's URL in the message: it holds the key.
            raise RobotError(f"WeCom robot {self.shown_url}: {type(exc).__name__}", retryable=False) from None

    def _check(self, response: httpx.Response) -> None:
        if response.status_code == 429 or response.status_code >= 500:
            raise RobotError(f"HTTP {response.status_code}", retryable=True,
                             retry_after=_seconds(response.headers.get("Retry-After")))
        if response.status_code != 200:
            raise RobotError(f"HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise RobotError("the robot's answer is not JSON") from None
        errcode = int(answer.get("errcode", -1))
        if errcode != 0:
            raise RobotError(f"errcode {errcode}: {answer.get('errmsg', '')}", errcode=errcode,
                             retryable=errcode in WECOM_RETRY_ERRCODES)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
