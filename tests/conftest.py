"""Shared fixtures: a real PostgreSQL for every test that needs one.

The server is the project's own embedded PostgreSQL (started under ``var/`` if it is not
running), or the one ``HUIJU_WAREHOUSE_URL`` names. Each test session works in databases
of its own, dropped at the end, so tests never see the demo's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from huiju import warehouse


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of the PostgreSQL server the tests use (its maintenance database)."""
    return warehouse.server_url()


@pytest.fixture(scope="session")
def make_database(pg_server_url: str) -> Iterator:
    """Factory: ``make_database(prefix)`` creates an empty database and returns its URL."""
    created: list[str] = []

    def make(prefix: str = "t") -> str:
        name = f"huiju_test_{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        created.append(name)
        return warehouse.ensure_database(pg_server_url, name)

    yield make
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for name in created:
            # A database used as a warehouse by Airflow-driven tests gets a metadata database beside it.
            for database in (name, f"{name}_airflow"):
                conn.execute(f'drop database if exists "{database}" with (force)')


@pytest.fixture(scope="session")
def pg_url(make_database) -> str:
    """A migrated warehouse database shared by the session's tests (ops, raw, quarantine)."""
    url = make_database("wh")
    warehouse.migrate(url)
    return url


@pytest.fixture
def pg(pg_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the session's warehouse database, rolled back after the test."""
    with psycopg.connect(pg_url) as conn:
        yield conn
        conn.rollback()


# The shared browser (headless chromium through Playwright) for every web-page test: tests/browser.py.
pytest_plugins = ["tests.browser"]
