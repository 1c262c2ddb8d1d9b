"""The pseudonym key fails closed: no key, no transform — but under the demo switch, whose pseudonyms are marked."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

import pytest

from huiju import transform
from huiju.settings import get_settings

# 11010519491231002X is GB 11643-1999's own example ID number (a published test vector, no citizen's).


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The process environment, settings read again after each change and once more afterwards."""
    monkeypatch.delenv("HUIJU_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("HUIJU_DEMO", raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_without_the_key_the_transform_refuses_and_says_what_to_set(environment: pytest.MonkeyPatch) -> None:
    with pytest.raises(transform.PseudonymKeyMissing, match="HUIJU_PSEUDONYM_KEY"):
        transform.pseudonym_key()
    with pytest.raises(transform.PseudonymKeyMissing):
        transform.dbt_env("postgresql://u:p@db.example/huiju")  # nothing reaches dbt without a key


def test_a_real_key_makes_unmarked_pseudonyms(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("HUIJU_PSEUDONYM_KEY", "a-secret")
    expected = hmac.new(b"a-secret", b"11010519491231002X", hashlib.sha256).hexdigest()
    assert transform.pseudonym(" 11010519491231002x ") == expected
    assert "huiju.pseudonym_prefix" not in transform.dbt_env("postgresql://u:p@db.example/huiju")["PGOPTIONS"]


def test_the_demo_switch_marks_every_pseudonym(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("HUIJU_DEMO", "1")
    get_settings.cache_clear()
    made = transform.pseudonym("11010519491231002X")
    assert made.startswith(transform.DEMO_PSEUDONYM_PREFIX) and len(made) == len("demo-") + 64
    options = transform.dbt_env("postgresql://u:p@db.example/huiju")["PGOPTIONS"]
    assert "-c huiju.pseudonym_prefix=demo-" in options
    environment.setenv("HUIJU_PSEUDONYM_KEY", "a-secret")  # a real key under the switch is still a demo run
    assert transform.pseudonym("11010519491231002X").startswith("demo-")
