"""The department's scorecard (报送考核: on-time rate, pass rate, reminders) on its history page.

MONITORING NOT YET LANDED: the scorecard is computed by the monitoring work (``huiju.monitoring``:
obligations, submission ledger, scorecards, reminders), which is being built beside the portal.
Until it is on main, :func:`department_scorecard` returns None and the page shows a marked
placeholder; once it is, this function is the one place to call it from.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import psycopg

from huiju.registry import Registry


def monitoring_available() -> bool:
    """Whether the core's monitoring package is installed in this build."""
    return importlib.util.find_spec("huiju.monitoring") is not None


def department_scorecard(conn: psycopg.Connection, registry: Registry, department: str) -> Any | None:
    """The department's scorecard, or None while the monitoring work has not landed."""
    return None
