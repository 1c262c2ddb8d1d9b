"""The test tree's layout, its markers, and a real PostgreSQL for every test that needs one.

Tests are grouped by kind first, then mirror the code they test::

    unit/<connectors|core|channels|demo|plugins|portal>/   pure Python, no server
    integration/<connectors|core|channels|portal>/         real servers started on loopback
                                                           (the portal's browser tests: also marked browser)
    dags/                                                  DAG integrity (the DAG files parse, wire and render)
    dbt/                                                   the dbt project against a warehouse
    e2e/                                                   the demo cycle through Airflow
    test_*.py (here)                                       the repository itself: lint, packaging, import contracts

Each test's marker is its folder's (:data:`KIND_BY_FOLDER`), applied here, so none can be
forgotten. Helpers shared by several test files live in :mod:`tests.support`, imported as
``from tests.support.<module> import …``.

The server is the project's own embedded PostgreSQL (started under ``var/`` if it is not
running), or the one ``HUIJU_WAREHOUSE_URL`` names. Each test session works in databases
of its own, dropped at the end, so tests never see the demo's data. The tests are the server's
admin (they make and drop those databases, and bootstrap each: huiju.warehouse.bootstrap); what
they run of the platform connects as its own roles.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from huiju import credentials, warehouse
from huiju.settings import get_settings

TESTS = Path(__file__).resolve().parent

# The demo switch (huiju.settings): tests run the transform on the public demo pseudonym key, and every
# pseudonym they make is marked 'demo-'. Set before any settings are read; a test may take it away.
os.environ.setdefault("HUIJU_DEMO", "1")

# The warehouse roles are the server's, but their passwords are kept per var/ (var/secrets): tests that run the
# platform with a var/ of their own (tmp folders, subprocesses) get the checkout's in the environment, as an
# external server's processes do (HUIJU_DB_PASSWORD_<ROLE>), so they all agree with what the server holds.
for _role in (*warehouse.platform_logins(), "huiju_demo_frontdb"):
    os.environ.setdefault(credentials.environment_name(_role), credentials.password(_role))

#: The marker of every test in a folder of ``tests/`` (by its first part); files directly in ``tests/`` are unit tests.
KIND_BY_FOLDER = {"unit": "unit", "integration": "integration", "dags": "dags", "dbt": "integration", "e2e": "e2e"}


#: The longest test files (whole daily cycles through Airflow), run first so that, with ``make test``'s workers
#: (pytest-xdist, a file per worker at a time, in this order), each starts on a worker of its own at once and
#: the rest of the suite fills the other worker beside them, instead of the longest starting last.
LONGEST_FIRST = ("tests/e2e/test_demo_cycle.py", "tests/integration/scaleout/test_celery_executor.py")


def pytest_configure(config: pytest.Config) -> None:
    """In the controller of a run on several workers: start the embedded server once, before the workers race
    to start it (each worker would otherwise start it from its first test needing a database)."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        warehouse.server_url()


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its folder's kind (a test in a folder without one is an error); longest files first."""
    def rank(item: pytest.Item) -> int:
        path = Path(item.path).resolve().relative_to(TESTS.parent).as_posix()
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a rank, collection order
    for item in items:
        parts = Path(item.path).resolve().relative_to(TESTS).parts
        kind = KIND_BY_FOLDER.get(parts[0]) if len(parts) > 1 else "unit"
        if kind is None:
            raise pytest.UsageError(f"{item.nodeid}: tests/{parts[0]}/ has no kind; add it to KIND_BY_FOLDER "
                                    "in tests/conftest.py")
        item.add_marker(kind)


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of the PostgreSQL server the tests use (its maintenance database)."""
    return warehouse.server_url()


@pytest.fixture(scope="session")
def make_database(pg_server_url: str) -> Iterator:
    """Factory: ``make_database(prefix)`` creates an empty database and returns its URL.

    ``make_database(prefix, template=url)`` creates a copy of the database at ``url`` instead (PostgreSQL
    copies its files: far quicker than building the same state again; nothing may be connected to it).
    ``make_database(prefix, migrated=True)``: a warehouse of the caller's own, with every migration run.
    """
    created: list[str] = []

    def make(prefix: str = "t", template: str | None = None, migrated: bool = False) -> str:
        name = f"huiju_test_{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        created.append(name)
        if template is None:
            url = warehouse.ensure_database(pg_server_url, name)
        else:
            with psycopg.connect(pg_server_url, autocommit=True) as conn:
                source = warehouse.libpq_params(template)["dbname"]
                conn.execute(f'create database "{name}" template "{source}" owner {warehouse.OWNER_ROLE}')
            url = warehouse.with_database(pg_server_url, name)
        if migrated:
            warehouse.migrate(url)
        return url

    yield make
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for name in created:
            # A warehouse gets databases beside it (Airflow's metadata, the demo's department databases).
            beside = [row[0] for row in conn.execute("select datname from pg_database where starts_with(datname, %s)",
                                                     (f"{name}_",))]
            for database in (name, *beside):
                conn.execute(f'drop database if exists "{database}" with (force)')


@pytest.fixture(scope="session")
def pg_url(make_database) -> str:
    """A migrated warehouse database shared by the session's tests (ops, raw, quarantine)."""
    return make_database("wh", migrated=True)


@pytest.fixture
def pg(pg_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the session's warehouse database, rolled back after the test."""
    with psycopg.connect(pg_url) as conn:
        yield conn
        conn.rollback()


@pytest.fixture
def scratch_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A var/ of the test's own (dbt manifest, docs, …), so the checkout's var/ is never touched."""
    # Settings are read once and cached: cleared so the new var/ is read, and again so it does not outlive the test.
    monkeypatch.setenv("HUIJU_VAR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


# The shared browser (headless chromium through Playwright) for every web-page test: tests/support/browser.py.
pytest_plugins = ["tests.support.browser"]
