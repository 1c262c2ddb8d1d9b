"""The sharing workflow's configuration and connection as the portal uses them (catalogue, policy, actor)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import psycopg
from fastapi import Request

from huiju.sharing.catalogue import CatalogueEntry, load_catalogue
from huiju.sharing.config import SharingPolicy, load_policy
from huiju.sharing.workflow import Actor
from huiju_portal.accounts import Account


@cache
def _loaded() -> tuple[dict[str, CatalogueEntry], SharingPolicy]:
    return load_catalogue(), load_policy()


def catalogue_of(request: Request) -> dict[str, CatalogueEntry]:
    """The resource catalogue (loaded once per process, like the registry)."""
    return _loaded()[0]


def policy_of(request: Request) -> SharingPolicy:
    """The sharing policy (config/sharing/policy.yaml)."""
    return _loaded()[1]


def actor_of(account: Account) -> Actor:
    """The portal account as the sharing workflow sees it."""
    return Actor(account.username, account.department, frozenset(role.value for role in account.roles))


@contextmanager
def sharing_connection(request: Request) -> Iterator[psycopg.Connection]:
    """A connection as the sharing component (one transaction: commits when the block ends, rolls back on error)."""
    with psycopg.connect(request.app.state.sharing_url) as conn:
        yield conn
