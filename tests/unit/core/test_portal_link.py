"""The link a feedback notice carries: the batch's page on the departments' portal (HUIJU_PORTAL_URL)."""

from __future__ import annotations

import pytest

from huiju.settings import get_settings, portal_batch_url


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch):
    for name in ("HUIJU_PORTAL_URL", "HUIJU_PORTAL_HOST", "HUIJU_PORTAL_PORT"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_the_default_is_where_the_portal_listens(fresh_settings: pytest.MonkeyPatch) -> None:
    assert portal_batch_url("cgj_penalty-0123456789abcdef") == "http://127.0.0.1:8081/history/cgj_penalty-0123456789abcdef"
    fresh_settings.setenv("HUIJU_PORTAL_PORT", "9090")
    get_settings.cache_clear()
    assert portal_batch_url("x").startswith("http://127.0.0.1:9090/history/")


def test_the_public_address_wins_and_the_id_is_quoted(fresh_settings: pytest.MonkeyPatch) -> None:
    fresh_settings.setenv("HUIJU_PORTAL_URL", "https://portal.example.gov.cn/huiju")
    fresh_settings.setenv("HUIJU_PORTAL_PORT", "9090")
    get_settings.cache_clear()
    assert portal_batch_url("a b/c") == "https://portal.example.gov.cn/huiju/history/a%20b%2Fc"
