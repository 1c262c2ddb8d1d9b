"""The robots' pure parts: DingTalk's 加签 signature and WeCom's payload within its limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse

from huiju_connectors.robots import RobotMessage, dingtalk_signature, truncate_utf8


def test_the_dingtalk_signature_is_dingtalks_recipe_url_encoded() -> None:
    timestamp, sign = dingtalk_signature("SEC000secret", 1765084800000)
    expected = base64.b64encode(hmac.new(b"SEC000secret", b"1765084800000\nSEC000secret", hashlib.sha256).digest())
    assert timestamp == "1765084800000"
    assert urllib.parse.unquote_plus(sign) == expected.decode()
    assert "+" not in sign and "/" not in sign and "=" not in sign  # safe in a query string as it is


def test_the_signature_timestamp_is_now_in_milliseconds() -> None:
    timestamp, _ = dingtalk_signature("s", clock=lambda: 1765084800.123)
    assert timestamp == "1765084800123"


def test_truncation_keeps_whole_characters_within_the_byte_limit() -> None:
    text = "税务局" * 2000  # 18,000 bytes
    cut = truncate_utf8(text, 4096)
    assert len(cut.encode()) <= 4096 and cut.endswith("（内容过长，已截断）")
    assert truncate_utf8("短", 4096) == "短"
    payload = RobotMessage("字" * 3000, msgtype="text").wecom_payload()
    assert len(payload["text"]["content"].encode()) <= 2048
