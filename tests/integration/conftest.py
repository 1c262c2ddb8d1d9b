"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from huiju_demo.mail_sink import MailSink, running_mail_sink

from huiju.settings import get_settings
from tests.support.webservice import own_config


@pytest.fixture
def webservice_platform(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The session's warehouse, a var/ of the test's own and the web-service-only config (REST/SOAP channel tests)."""
    monkeypatch.setenv("HUIJU_WAREHOUSE_URL", pg_url)
    monkeypatch.setenv("HUIJU_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("HUIJU_CONFIG", str(own_config(tmp_path / "config")))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def replay_platform(make_database: Callable[..., str], tmp_path: Path,
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A warehouse and a var/ (its archive) of the test's own, for the core's connections: a restore must find
    nothing but the archive (replay tests)."""
    url = make_database("replay", migrated=True)
    monkeypatch.setenv("HUIJU_WAREHOUSE_URL", url)
    monkeypatch.setenv("HUIJU_VAR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def webservice_replay_platform(replay_platform: str, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A warehouse, an archive and the web-service-only config (REST, SOAP, websites) of the test's own: a restore
    finds only the archive (replay tests of the page channels)."""
    monkeypatch.setenv("HUIJU_CONFIG", str(own_config(tmp_path / "config")))
    get_settings.cache_clear()
    yield replay_platform
    get_settings.cache_clear()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    """A real SMTP server (aiosmtpd) on loopback keeping what it receives (``huiju_demo.mail_sink``)."""
    with running_mail_sink(tmp_path / "mail") as running:
        yield running
