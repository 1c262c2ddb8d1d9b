"""The department's scorecard (报送考核) on its history page: last month's figures from huiju.monitoring, its
own data items only, its rank in the month's 通报 and the 催报 notices it received."""

from __future__ import annotations

import re
from datetime import timedelta

import psycopg
import pytest

from huiju.monitoring.ledger import backfill, today
from huiju.monitoring.scorecards import ranking, scorecards
from huiju.workdays import work_calendar
from huiju_portal.scorecard import last_complete_month
from tests.support.deliveries import add_load, at

MONTH = last_complete_month(today())


@pytest.fixture(scope="module")
def delivered(portal_env) -> None:
    """sthjj delivers its daily penalties on most working days of last month, one of them held; scjgj a few."""
    registry = portal_env.registry
    cal = work_calendar()
    first = today().replace(day=1) - timedelta(days=1)
    days = cal.working_days_from(first.replace(day=1), first + timedelta(days=1))
    with psycopg.connect(portal_env.url, autocommit=True) as conn:
        sthjj = registry.source("sthjj_penalty")
        for index, day in enumerate(days):
            if index % 7 == 3:
                continue  # missed
            held = index == 5
            add_load(conn, sthjj, at(day, 18), rows=40, quarantined=30 if held else index % 3,
                     status="held" if held else "published", feedback_rows=30 if held else None)
        scjgj = registry.source("scjgj_penalty")
        for day in days[::4]:
            add_load(conn, scjgj, at(day, 18), rows=10)
        conn.execute("insert into ops.notices (dedupe_key, kind, department, source_id, subject, body, created_at)"
                     " values ('monitor:overdue:sthjj:sthjj_penalty:x', 'monitor_overdue', 'sthjj', 'sthjj_penalty',"
                     " '【催报】', '催报', %s)", (at(days[4]),))
        backfill(conn, registry)


def _cells(page: str, source: str) -> list[str]:
    row = re.search(rf'<tr[^>]*data-source="{source}">(.*?)</tr>', page, re.S)
    assert row, f"no row for {source}"
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[dh]>(.*?)</t[dh]>", row.group(1), re.S)]


def test_the_department_sees_its_own_month(delivered, client_for, portal_env) -> None:
    page = client_for("sthjj_submitter").get("/history").text
    assert 'data-placeholder="scorecard"' not in page and f'data-month="{MONTH}"' in page
    with psycopg.connect(portal_env.url) as conn:
        cards = {c.source_id: c for c in scorecards(conn, MONTH, "sthjj")}
        ranked = ranking(conn, MONTH)
    card = cards["sthjj_penalty"]
    assert card.periods_due > card.periods_delivered > 0 and card.feedback_rows == 30
    pct = lambda rate: "—" if rate is None else f"{rate:.1%}"  # noqa: E731 - the page's format
    assert _cells(page, "sthjj_penalty") == ["环境行政处罚", str(card.periods_due), str(card.periods_delivered),
                                             str(card.periods_on_time), pct(card.timeliness),
                                             pct(card.completeness), pct(card.quality), pct(card.correction)]
    assert _cells(page, "total")[0] == "合计"
    rank = next(r.rank for r in ranked if r.card.department == "sthjj")
    assert f"全市通报排名第{rank}名，共{len(ranked)}个单位" in page and "收到催报通知1次" in page
    assert "scjgj_penalty" not in page  # another department's data items are not on its card


def test_another_department_and_the_steward(delivered, client_for) -> None:
    mzj = client_for("mzj_submitter").get("/history").text
    assert "sthjj_penalty" not in mzj and "环境行政处罚" not in mzj.split('id="scorecard"')[1].split("</section>")[0]
    steward = client_for("steward").get("/history?department=sthjj").text
    assert 'data-source="sthjj_penalty"' in steward
