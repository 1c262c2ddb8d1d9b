"""Fixtures of the sharing tests: a warehouse with small share relations of the catalogue's models, the actors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest

from huiju import warehouse
from huiju.registry import Registry, load_registry
from huiju.settings import get_settings
from huiju.sharing.catalogue import CatalogueEntry, load_catalogue
from huiju.sharing.config import SharingPolicy, load_policy
from huiju.sharing.workflow import Actor
from tests.support.sharing import SHARE_RELATIONS

REQUESTER = Actor("zjj_data", "zjj", frozenset({"submitter"}))
OWNER_APPROVER = Actor("scjgj_boss", "scjgj", frozenset({"approver"}))
OTHER_APPROVER = Actor("zjj_boss", "zjj", frozenset({"approver"}))
STEWARD = Actor("steward", None, frozenset({"steward"}))


@dataclass(frozen=True)
class SharingEnv:
    """A warehouse with the share stand-ins, and the configuration the workflow reads."""

    url: str
    catalogue: dict[str, CatalogueEntry]
    policy: SharingPolicy
    registry: Registry

    def connect(self) -> psycopg.Connection:
        """A connection as the sharing component (commits when its block ends)."""
        return warehouse.connect(self.url, role="sharing")


@pytest.fixture(scope="module")
def sharing_env(make_database: Callable[..., str]) -> Iterator[SharingEnv]:
    """A warehouse of the module's own (migrated), with the share stand-ins; the repository's config/."""
    url = make_database("sharing", migrated=True)
    with psycopg.connect(url) as conn:
        conn.execute(SHARE_RELATIONS)
    get_settings.cache_clear()
    yield SharingEnv(url=url, catalogue=load_catalogue(), policy=load_policy(), registry=load_registry())
    with psycopg.connect(url, autocommit=True) as conn:  # the grants' roles are the server's: never left behind
        for (grant_id,) in conn.execute("select grant_id from sharing.grants where ended_at is null").fetchall():
            conn.execute("select sharing.end_grant(%s, 'revoked', 'tests', 'test teardown')", (grant_id,))
