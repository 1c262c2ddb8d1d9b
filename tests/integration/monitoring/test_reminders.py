"""The 催报 ladder (huiju.monitoring.reminders): 1,000 simulated scheduler runs over three months — repeated
runs, backfills for earlier days, runs that fail mid-way and are retried, workers SIGKILLed mid-run (child
processes) — leave exactly the notices the days call for in ops.notices, each once; and what they say."""

from __future__ import annotations

import os
import random
import signal
import time
from datetime import date, timedelta

import psycopg
import pytest

from huiju.monitoring.ledger import backfill
from huiju.monitoring.obligations import obligations
from huiju.monitoring.reminders import LOOKBACK_DAYS, dedupe_key, digest_key, queue_reminders
from huiju.workdays import WorkCalendar
from tests.support.deliveries import add_load, at, registry, source

CAL = WorkCalendar.build()
FIRST, LAST = date(2026, 9, 1), date(2026, 11, 30)
SOURCES = [
    source("m_monthly", "d0", cadence="monthly", since=date(2026, 6, 1), escalate_after_working_days=3),
    source("w_weekly", "d1", cadence="weekly", since=date(2026, 8, 31), grace_working_days=1),
    source("f_daily", "d2", cadence="daily", since=date(2026, 9, 1), remind_before_working_days=0),
    source("c_live", "d3", cadence="daily", channel="rest", since=date(2026, 9, 1), escalate_after_working_days=2),
]
REGISTRY = registry(SOURCES)
#: A commit need not wait for the disk here: what is tested is which transactions commit, not durability.
FAST_COMMIT = "-c synchronous_commit=off"


class RunFailed(RuntimeError):
    """An injected failure in the middle of a run."""


@pytest.fixture(scope="module")
def url(make_database) -> str:
    return make_database("rm", migrated=True)


def deliver(conn: psycopg.Connection, rng: random.Random) -> dict[tuple[str, str], tuple[date | None, bool]]:
    """A season of deliveries; per (source, period): the day usable data arrived (None: never), and held."""
    owed = obligations(REGISTRY, LAST + timedelta(days=1), cal=CAL)
    outcome: dict[tuple[str, str], tuple[date | None, bool]] = {}
    for due in owed.dues:
        src = REGISTRY.sources[due.rule.source_id]
        if due.late_after is None:
            continue
        fate = rng.choices(["on_time", "late", "missing", "held"], [60, 15, 15, 10])[0]
        if due.rule.continuous:
            day = due.period.start
            fate = "missing" if rng.random() < 0.25 else "on_time"
        elif due.rule.period == "day":
            day = due.period.end + timedelta(days=1)  # the next day: within its receive window
            fate = "on_time" if fate == "late" else fate
        elif fate == "late":
            day = due.late_after + timedelta(days=rng.randrange(1, 4))
        else:
            day = due.period.end + timedelta(days=rng.randrange(1, (due.due_date - due.period.end).days + 1))
        if fate == "missing":
            outcome[(src.id, due.period.key)] = (None, False)
            continue
        add_load(conn, src, at(day), status="held" if fate == "held" else "published", rows=10,
                 quarantined=8 if fate == "held" else 0)
        outcome[(src.id, due.period.key)] = (None if fate == "held" else day, fate == "held")
    return outcome


def expected_keys(as_of: date, outcome: dict[tuple[str, str], tuple[date | None, bool]]) -> set[str]:
    """The ladder, stated independently of the module: which notices ``as_of`` calls for."""
    keys = {digest_key(as_of)}
    owed = obligations(REGISTRY, LAST + timedelta(days=1), cal=CAL)
    previous_unanswered: dict[str, bool] = {}
    for due in owed.dues:
        rule, key = due.rule, (due.rule.source_id, due.period.key)
        if due.period.end >= as_of or due.late_after is None:
            continue
        usable = outcome.get(key, (None, False))[0]
        unanswered = usable is None or usable > as_of
        before, previous_unanswered[rule.source_id] = previous_unanswered.get(rule.source_id, False), unanswered
        if not unanswered:
            continue
        name = rule.department, rule.source_id, due.period.key
        if as_of <= due.due_date:
            if not rule.continuous and \
                    CAL.working_days_between(as_of, due.due_date) <= rule.remind_before_working_days:
                keys.add(dedupe_key("remind", *name))
        elif due.late_after < as_of <= due.late_after + timedelta(days=LOOKBACK_DAYS):
            if rule.continuous and before:
                continue
            keys.add(dedupe_key("overdue", *name))
            if CAL.working_days_between(due.late_after, as_of) >= rule.escalate_after_working_days:
                keys.add(dedupe_key("escalate", *name))
    return keys


def run_in_child(url: str, as_of: date, *, wait_before_commit: bool) -> int:
    """Fork a worker that runs the day's reminders; returns its pid. With ``wait_before_commit`` it has queued
    everything in its open transaction and says so on the pipe before it would commit."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        try:
            os.close(read)
            with psycopg.connect(url, options=FAST_COMMIT) as conn, conn.transaction():
                queue_reminders(conn, REGISTRY, as_of, cal=CAL)
                if wait_before_commit:
                    os.write(write, b"q")
                    time.sleep(60)
        finally:
            os._exit(0)
    os.close(write)
    if wait_before_commit:
        assert os.read(read, 1) == b"q"
    os.close(read)
    return pid


def test_a_thousand_scheduler_runs_queue_each_notice_once(url: str) -> None:
    rng = random.Random(1600)
    with psycopg.connect(url, options=FAST_COMMIT) as conn:
        outcome = deliver(conn, rng)
        backfill(conn, REGISTRY, as_of=LAST + timedelta(days=1), cal=CAL)
        conn.commit()
        days = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
        attempted: set[date] = set()
        kills = failures = backfills = 0
        for run in range(1000):
            today = days[min(run * len(days) // 1000, len(days) - 1)]
            kind = rng.choices(["run", "backfill", "fail", "kill", "kill_any_time"], [70, 15, 7, 4, 4])[0]
            as_of = today if kind != "backfill" else rng.choice(days[: days.index(today) + 1])
            attempted.add(as_of)
            if kind in ("kill", "kill_any_time"):
                pid = run_in_child(url, as_of, wait_before_commit=kind == "kill")
                if kind == "kill_any_time":
                    time.sleep(rng.random() * 0.01)
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                kills += 1
            elif kind == "fail":
                try:
                    with conn.transaction():
                        queue_reminders(conn, REGISTRY, as_of, cal=CAL)
                        raise RunFailed("worker lost mid-run")
                except RunFailed:
                    failures += 1
            else:
                queue_reminders(conn, REGISTRY, as_of, cal=CAL)
                conn.commit()
                backfills += kind == "backfill"
                continue
            queue_reminders(conn, REGISTRY, as_of, cal=CAL)  # the scheduler's retry
            conn.commit()
        expected = set().union(*(expected_keys(day, outcome) for day in attempted))
        queued = [row[0] for row in conn.execute("select dedupe_key from ops.notices where kind like 'monitor%'")]
        assert len(queued) == len(set(queued))
        assert set(queued) == expected
        assert kills > 20 and failures > 20 and backfills > 100
        levels = {key.split(":")[1] for key in queued}
        assert levels == {"remind", "overdue", "escalate", "digest"}
        # Every notice has its deliveries; an escalation reaches the leader, the contacts and the stewards.
        assert conn.execute("select count(*) from ops.notices n where not exists"
                            " (select from ops.notice_deliveries d where d.notice_id = n.notice_id)").fetchone()[0] == 0
        leaders = conn.execute("select count(distinct n.notice_id) from ops.notices n join ops.notice_deliveries d"
                               " using (notice_id) where n.kind = 'monitor_escalate'"
                               " and d.recipient like '%%-leader@%%'").fetchone()[0]
        assert leaders == sum(1 for key in queued if key.startswith("monitor:escalate:"))


def test_what_the_notices_say(url: str) -> None:
    with psycopg.connect(url) as conn:
        notices = {row[0]: (row[1], row[2]) for row in conn.execute(
            "select dedupe_key, subject, body from ops.notices where kind like 'monitor%'")}
    overdue = next(v for k, v in notices.items() if k.startswith("monitor:overdue:d0:m_monthly:"))
    assert "【催报】测试局d0《数据项m_monthly》（数据集：" in overdue[0]
    assert "报送截止日期：" in overdue[1] and "年" in overdue[1] and "月的数据" in overdue[1]
    silence = next(v for k, v in notices.items() if k.startswith("monitor:overdue:d3:c_live:"))
    assert "未收到贵单位系统推送的数据" in silence[1]
    escalation = next(v for k, v in notices.items() if k.startswith("monitor:escalate:"))
    assert escalation[1].startswith("王局长副局长：") and "个工作日" in escalation[0]
    digest = next(v for k, v in notices.items() if k.startswith("monitor:digest:"))
    assert digest[0].startswith("【催报周报】")
