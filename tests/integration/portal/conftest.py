"""Fixtures of the portal's tests: a warehouse of the module's own with the demo accounts, the app, clients.

Every module gets a fresh warehouse, copied from one the session migrates and fills with the demo
accounts once (:func:`portal_template`): the accounts' argon2 hashes (production parameters,
about a quarter of a second each) are paid once per session, not once per module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from huiju import warehouse
from huiju.registry import Registry, load_registry
from huiju.settings import get_settings
from huiju_portal.accounts import ensure_demo_accounts
from huiju_portal.app import create_app
from tests.support.portal import login, portal_settings


@dataclass(frozen=True)
class PortalTemplate:
    """The session's migrated warehouse with the demo accounts, copied for each module; their passwords."""

    url: str
    passwords: dict[str, str]


@dataclass(frozen=True)
class PortalEnv(PortalTemplate):
    """A module's portal: its warehouse (a copy of the template) and passwords, var/ folder and registry."""

    var: Path
    registry: Registry


@pytest.fixture(scope="session")
def portal_template(make_database: Callable[..., str], tmp_path_factory: pytest.TempPathFactory) -> PortalTemplate:
    """A migrated warehouse with the demo accounts (one per role and department), never used directly."""
    url = make_database("portal_template")
    warehouse.migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        passwords = ensure_demo_accounts(conn, load_registry(),
                                         tmp_path_factory.mktemp("portal-template") / "demo_passwords.json")
    return PortalTemplate(url, passwords)


@pytest.fixture(scope="module")
def portal_env(make_database: Callable[..., str], portal_template: PortalTemplate,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalEnv]:
    """A warehouse (a copy of the session's template) and a var/ of the module's own."""
    url = make_database("portal", template=portal_template.url)
    var = tmp_path_factory.mktemp("portal-var")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HUIJU_VAR", str(var))
        patch.setenv("HUIJU_WAREHOUSE_URL", url)
        get_settings.cache_clear()
        yield PortalEnv(url, dict(portal_template.passwords), var, load_registry())
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def portal_app(portal_env: PortalEnv):
    """The portal application on the module's warehouse."""
    return create_app(portal_settings(portal_env.var), registry=portal_env.registry, warehouse_url=portal_env.url)


@pytest.fixture
def client_for(portal_app, portal_env: PortalEnv) -> Iterator[Callable[[str], TestClient]]:
    """``client_for("sthjj_submitter")``: a test client logged in as that demo account (closed after the test)."""
    clients: list[TestClient] = []

    def make(username: str) -> TestClient:
        client = TestClient(portal_app, base_url="http://portal.test", follow_redirects=True)
        client.__enter__()
        clients.append(client)
        response = login(client, username, portal_env.passwords[username])
        assert response.url.path == "/", response.text[:500]
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
