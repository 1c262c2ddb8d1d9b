"""Fixtures of the portal's tests: a warehouse of the module's own with the demo accounts, the app, clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from portal_cases import login, portal_settings

from huiju import warehouse
from huiju.registry import Registry, load_registry
from huiju.settings import get_settings
from huiju_portal.accounts import ensure_demo_accounts
from huiju_portal.app import create_app


@dataclass(frozen=True)
class PortalEnv:
    """A module's portal: its warehouse, var/ folder, registry and demo accounts' passwords."""

    url: str
    var: Path
    registry: Registry
    passwords: dict[str, str]


@pytest.fixture(scope="module")
def portal_env(make_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalEnv]:
    """A migrated warehouse and a var/ of the module's own, with the demo accounts (one per role and department)."""
    url = make_database("portal")
    warehouse.migrate(url)
    var = tmp_path_factory.mktemp("portal-var")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HUIJU_VAR", str(var))
        patch.setenv("HUIJU_WAREHOUSE_URL", url)
        get_settings.cache_clear()
        registry = load_registry()
        with psycopg.connect(url, autocommit=True) as conn:
            passwords = ensure_demo_accounts(conn, registry, var / "portal" / "demo_passwords.json")
        yield PortalEnv(url, var, registry, passwords)
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
