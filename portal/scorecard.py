"""The department's scorecard (报送考核: on-time rate, pass rate, reminders) on its history page.

MONITORING NOT YET LANDED: the scorecard is computed by the monitoring work (``huiju.monitoring``:
obligations, submission ledger, scorecards, reminders), which is being built beside the portal.
Until it is on main, :func:`department_scorecard` returns None and the history page shows a
marked placeholder (``data-placeholder="scorecard"`` in ``templates/history.html``). Once it is,
this function is the one place to call it from — on the monitoring branch that is
``huiju.monitoring.scorecards.monthly_scorecard(conn, month)`` filtered to the department (its
``ScoreLine``: 报送及时率, 完整率, 数据合格率, 问题数据整改率, 综合得分) — and
``templates/_scorecard.html`` the one place to show it.
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
