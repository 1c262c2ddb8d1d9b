"""The 催报 a department received, listed on its history page under its scorecard: level, data item, period, day.

The notices are those the monitoring run queued for the department's missed periods of last month
(:func:`huiju.monitoring.reminders.queue_reminders`, run for each of its days), each dated the day
its run queued it.
"""

from __future__ import annotations

import re
from datetime import timedelta

import psycopg
import pytest

from huiju.monitoring.ledger import backfill, today
from huiju.monitoring.reminders import queue_reminders
from huiju.workdays import work_calendar
from huiju_portal.scorecard import department_scorecard, last_complete_month
from tests.support.deliveries import add_load, at

MONTH = last_complete_month(today())


@pytest.fixture(scope="module")
def chased(portal_env) -> list[tuple[str, str, str]]:
    """sthjj misses two days of last month and is chased for them, by the day; (level, period, day) sent."""
    registry = portal_env.registry
    cal = work_calendar()
    last = today().replace(day=1) - timedelta(days=1)
    days = cal.working_days_from(last.replace(day=1), last)
    missed = {days[2], days[9]}
    sent: list[tuple[str, str, str]] = []
    with psycopg.connect(portal_env.url, autocommit=True) as conn:
        sthjj = registry.source("sthjj_penalty")
        for day in days:
            if day not in missed:
                add_load(conn, sthjj, at(day + timedelta(days=1), 9), rows=20)
        backfill(conn, registry)
        for day in (days[0] + timedelta(days=n) for n in range((last - days[0]).days + 1)):
            report = queue_reminders(conn, registry, day, cal=cal, source_ids=["sthjj_penalty"])
            # Dated the day its run queued it, as the hourly monitor would have.
            conn.execute("update ops.notices set created_at = %s where dedupe_key = any(%s)",
                         (at(day, 8), report.queued))
            sent += [(key.split(":")[1], key.rsplit(":", 1)[-1], day.isoformat()) for key in report.queued]
        # Another department's 催报 is not on sthjj's page.
        conn.execute("insert into ops.notices (dedupe_key, kind, department, source_id, subject, body, created_at)"
                     " values ('monitor:overdue:mzj:mzj_penalty:x', 'monitor_overdue', 'mzj', 'mzj_penalty',"
                     " '【催报】', '催报', %s)", (at(days[4]),))
    return sent


def test_the_history_page_lists_each_reminder_with_level_period_and_day(chased, client_for, portal_env) -> None:
    levels = {level for level, _, _ in chased}
    assert {"overdue", "escalate"} <= levels, chased  # both missed days were late long enough to reach the leader
    page = client_for("sthjj_submitter").get("/history").text
    table = re.search(r'<table class="reminders-table" data-month="([^"]+)">(.*?)</table>', page, re.S)
    assert table and table.group(1) == MONTH, page
    rows = re.findall(r'<tr data-level="(\w+)" data-period="([^"]+)"><td>([^<]+)</td><td>([^<]+)</td>'
                      r'<td>[^<]+</td>\s*<td><a href="/notices/\d+">([^<]+)</a></td></tr>', table.group(2))
    labels = {"remind": "报送提醒", "overdue": "催报", "escalate": "督办（已告知分管领导）"}
    assert sorted((level, period, day) for level, period, _, _, day in rows) == sorted(chased)
    assert all(label == labels[level] and title == "环境行政处罚" for level, _, label, title, _ in rows)
    days = [day for *_, day in rows]
    assert days == sorted(days, reverse=True)  # newest first
    assert f"收到催报通知{len(chased)}次" in page and "mzj_penalty" not in table.group(2)


def test_the_scorecard_carries_the_same_list(chased, portal_env) -> None:
    with psycopg.connect(portal_env.url) as conn:
        card = department_scorecard(conn, portal_env.registry, "sthjj")
    assert card.reminders == len(chased)
    assert sorted((r.level, r.period, r.sent_on.isoformat()) for r in card.reminders_sent) == sorted(chased)
