"""Fixtures of the monitoring tests: the demo's monitoring data in a warehouse of the session's own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest

from huiju import warehouse
from huiju.registry import load_registry
from huiju.settings import get_settings
from tests.support.dashboard import DemoMonitoring, seed_demo_monitoring


@pytest.fixture(scope="session")
def demo_monitoring(make_database: Callable[..., str], tmp_path_factory: pytest.TempPathFactory) -> DemoMonitoring:
    """A warehouse as the demo leaves it for monitoring (history, the day's batches, two monitor runs) and its var/
    (GX's results); read only.

    The demo day is yesterday, as ``huiju demo`` takes it; built once a session (its batches take seconds).
    """
    url = make_database("demo_monitoring")
    warehouse.migrate(url)
    day = date.today() - timedelta(days=1)
    var = tmp_path_factory.mktemp("demo-monitoring-var")
    with pytest.MonkeyPatch.context() as patch:  # GX's results: in a var/ of the fixture's own
        patch.setenv("HUIJU_VAR", str(var))
        get_settings.cache_clear()
        try:
            return seed_demo_monitoring(url, load_registry(), var / "demo", day, var)
        finally:
            get_settings.cache_clear()
