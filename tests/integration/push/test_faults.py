"""Pushing to a simulated credit platform on loopback (real HTTP), through every fault the issue names.

Each test ends with every record at the target exactly once and every receipt recorded
(:func:`assert_exactly_once`). The waits the retry policy asks for are recorded, not slept.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from datetime import date, timedelta

import psycopg
import pytest
from huiju_demo.credit_platform import CreditPlatform as SimulatedPlatform

from huiju.monitoring.ledger import today as shanghai_today
from huiju.push.outbox import compute_due
from huiju.push.run import push_target, queue_deadline_alerts, reconciliation, replay
from huiju.push.sender import assign_batches, drain
from huiju.workdays import work_calendar
from tests.integration.push.conftest import CreditTable, connector, make_target
from tests.support.citizens import EXAMPLE_ID_NUMBER

ID_NUMBER = EXAMPLE_ID_NUMBER


def settle(conn: psycopg.Connection, registry, target, platform, waits, *, rounds: int = 50) -> None:
    """Run pushes until nothing is open (each run is what the scheduled DAG does)."""
    client = connector(target, platform, waits)
    for _ in range(rounds):
        push_target(conn, registry, target, client)
        (open_batches,) = conn.execute("select count(*) from ops.push_batches where target = %s"
                                       " and state in ('pending', 'sending')", (target.target,)).fetchone()
        if not open_batches:
            return
    raise AssertionError(f"{target.target}: batches still open after {rounds} runs")


def assert_exactly_once(conn: psycopg.Connection, credit: CreditTable, target, platform: SimulatedPlatform,
                        *, takes_backflow: bool = True) -> None:
    """Every publishable record at the platform, each version applied once; every outbox row has its receipt."""
    assert platform.duplicates() == []
    assert platform.changed_resends() == []  # every resend of a batch carried the same bytes under its key
    rejected = {key for (key,) in conn.execute(
        "select distinct record_key from ops.push_outbox o where target = %s and state = 'rejected'"
        " and not exists (select 1 from ops.push_outbox n where n.target = o.target and n.record_key = o.record_key"
        "                 and n.outbox_id > o.outbox_id and n.state = 'accepted')", (target.target,))}
    assert set(platform.records) == credit.publishable(takes_backflow) - rejected
    unsettled = conn.execute("select count(*) from ops.push_outbox where target = %s"
                             " and state not in ('accepted', 'rejected', 'superseded')", (target.target,)).fetchone()
    assert unsettled == (0,)
    without_receipt = conn.execute(
        "select count(*) from ops.push_outbox o where target = %s and state in ('accepted', 'rejected')"
        " and not exists (select 1 from ops.push_receipts r where r.outbox_id = o.outbox_id"
        "                 and r.outcome = o.state)", (target.target,)).fetchone()
    assert without_receipt == (0,)
    conn.commit()


def push_through(pg_url: str, credit: CreditTable, platform: SimulatedPlatform, waits, registry, *, records: int,
                 faults: list[str]) -> None:
    """``records`` new records pushed through ``faults`` until settled; exactly once, every receipt kept."""
    target = make_target(credit)
    credit.add(records)
    platform.faults = list(faults)
    with psycopg.connect(pg_url) as conn:
        settle(conn, registry, target, platform, waits)
        assert_exactly_once(conn, credit, target, platform)


def test_503_then_200(pg_url, credit, platform, waits, registry) -> None:
    """Each batch meets a 503 first; the retry (same idempotency key) gets the receipts."""
    push_through(pg_url, credit, platform, waits, registry, records=40, faults=["503", "ok"] * 4)
    assert platform.injected == 4 and len(waits.seconds) == 4


def test_429_retry_after_is_honoured(pg_url, credit, platform, waits, registry) -> None:
    platform.retry_after = "7"
    push_through(pg_url, credit, platform, waits, registry, records=12, faults=["429", "429"])
    assert waits.seconds == [7.0, 7.0]


def test_commit_then_timeout_sends_the_same_key(pg_url, credit, platform, waits, registry) -> None:
    """The platform applies the batch, the answer never comes in time; the resend is recognised by its key."""
    push_through(pg_url, credit, platform, waits, registry, records=30,
                 faults=["commit-then-timeout", "commit-then-timeout", "503", "commit-then-timeout"])
    assert len(platform.batches_in_order) == 3


def test_killed_after_200_before_commit(pg_url, credit, platform, waits, registry, tmp_path) -> None:
    """A pusher process dies (SIGKILL) after the platform's 200 and before it commits the receipts.

    The next run finds the batch ``sending``, asks the platform by batch id and records its
    receipts: nothing is sent twice.
    """
    target = make_target(credit)
    credit.add(20)
    with psycopg.connect(pg_url) as conn:
        compute_due(conn, registry, target)
        assign_batches(conn, target)
    script = textwrap.dedent(f"""
        import json, os, signal, psycopg
        from huiju.channels.connection import ConnectionInfo
        from huiju.push import sender
        from huiju.push.run import platform_for
        from huiju.push.targets import Target
        target = Target.model_validate_json({target.model_dump_json()!r})
        spec = json.loads({json.dumps(platform.connection())!r})
        client = platform_for(target, ConnectionInfo(conn_id="x", login=spec["login"], password=spec["password"],
                                                     extra=spec["extra"]))
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)  # the 200 is in; our commit never happens
        sender.record_receipts = die
        with psycopg.connect({pg_url!r}) as conn:
            sender.drain(conn, target, client)
    """)
    killed = subprocess.run([sys.executable, "-c", script], env={**os.environ}, capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert len(platform.batches_in_order) == 1  # the first batch reached the platform
    with psycopg.connect(pg_url) as conn:
        (state,) = conn.execute("select state from ops.push_batches where batch_id = 'city_credit-00000001'"
                                ).fetchone()
        assert state == "sending"
        report = drain(conn, target, connector(target, platform, waits))
        assert report.reconciled >= 1
        assert_exactly_once(conn, credit, target, platform)
        via = conn.execute("select via from ops.push_receipts where batch_id = 'city_credit-00000001' limit 1"
                           ).fetchone()
        assert via == ("status",)


def test_per_record_rejections_go_back_as_problem_data(pg_url, credit, platform, waits, registry) -> None:
    """Rejected records keep the platform's reason; the department is told (feedback path)."""
    target = make_target(credit)
    keys = credit.add(30)
    refused = set(keys[::7])
    platform.reject = lambda record: ("统一社会信用代码与名称不符" if record["data"].get("CF_WSH") in refused else None)
    with psycopg.connect(pg_url) as conn:
        settle(conn, registry, target, platform, waits)
        assert_exactly_once(conn, credit, target, platform)
        reasons = conn.execute("select record_key, reason from ops.push_receipts where outcome = 'rejected'"
                               " order by record_key").fetchall()
        assert [key for key, _ in reasons] == sorted(f"CF:{k}" for k in refused)
        assert {reason for _, reason in reasons} == {"统一社会信用代码与名称不符"}


def test_malformed_and_partial_receipts_are_reconciled_by_status_query(pg_url, credit, platform, waits,
                                                                       registry) -> None:
    push_through(pg_url, credit, platform, waits, registry, records=40,
                 faults=["malformed", "partial", "malformed", "partial"])
    with psycopg.connect(pg_url) as conn:
        (unknown,) = conn.execute("select count(*) from ops.push_receipts where outcome = 'unknown'").fetchone()
        assert unknown > 0  # recorded as unknown first, then settled by the status query
        (via_status,) = conn.execute("select count(*) from ops.push_receipts where via = 'status'").fetchone()
        assert via_status >= unknown


def test_413_splits_deterministically(pg_url, credit, platform, waits, registry) -> None:
    target = make_target(credit, batch_size=40)
    credit.add(40)
    platform.max_records = 7
    with psycopg.connect(pg_url) as conn:
        settle(conn, registry, target, platform, waits)
        assert_exactly_once(conn, credit, target, platform)
        batches = [row[0] for row in conn.execute(
            "select batch_id from ops.push_batches where state = 'done' order by batch_id")]
    assert batches[:2] == ["city_credit-00000001.1.1.1", "city_credit-00000001.1.1.2"]
    assert platform.batches_in_order == sorted(platform.batches_in_order)


def test_other_4xx_is_final_for_the_batch_and_replay_resends(pg_url, credit, platform, waits, registry) -> None:
    target = make_target(credit)
    credit.add(15)
    platform.faults = ["400"]
    with psycopg.connect(pg_url) as conn:
        settle(conn, registry, target, platform, waits)
        (refused,) = conn.execute("select count(*) from ops.push_outbox where state = 'refused'").fetchone()
        assert refused == 10  # the first batch, never retried
        today = shanghai_today()  # replay selects by the day queued in Asia/Shanghai, not the machine's date
        assert replay(conn, target, today, today) == 10
        settle(conn, registry, target, platform, waits)
        assert replay(conn, target, today, today) == 0  # nothing unaccepted is left
        rows = {row["target"]: row for row in reconciliation(conn)}
        assert rows["city_credit"]["accepted"] == 15
    assert platform.duplicates() == []
    assert set(platform.records) == credit.publishable()


def test_outage_across_a_holiday_drains_in_order_and_alerts_before_the_deadline(pg_url, credit, platform, waits,
                                                                              registry) -> None:
    """The platform is down from the eve of National Day 2026 for a day and more; batches queue up each run
    and go out in order once it is back. A record due to miss its 7-working-day deadline is reported to the
    stewards one working day before."""
    target = make_target(credit)
    calendar = work_calendar()
    decided = date(2026, 9, 24)
    deadline = calendar.add_working_days(decided, 7)
    eve = calendar.last_working_day(deadline - timedelta(days=1))
    assert calendar.add_working_days(eve, 1) == deadline
    platform.down = True
    with psycopg.connect(pg_url) as conn:
        for _ in range(4):
            credit.add(6, decision_date=decided)
            report = push_target(conn, registry, target, connector(target, platform, waits), today=decided)
            assert report.sent.stopped is not None
        assert queue_deadline_alerts(conn, eve) == 1
        assert queue_deadline_alerts(conn, eve) == 0  # once
        (subject,) = conn.execute("select subject from ops.notices where kind = 'push_deadline'"
                                  " order by notice_id desc limit 1").fetchone()
        assert "双公示临期" in subject
        conn.commit()
        platform.down = False
        settle(conn, registry, target, platform, waits)
        assert_exactly_once(conn, credit, target, platform)
        sent_order = [row[0] for row in conn.execute(
            "select batch_id from ops.push_batches where target = %s order by batch_no", (target.target,))]
        conn.execute("delete from ops.notice_deliveries where notice_id in"
                     " (select notice_id from ops.notices where kind = 'push_deadline')")
        conn.execute("delete from ops.notices where kind = 'push_deadline'")
        conn.commit()
    assert platform.batches_in_order == sent_order
    assert platform.injected >= 4


def test_withdrawals_reach_every_target_and_backflow_never_goes_back_to_the_province(
        pg_url, credit, waits, registry) -> None:
    """A record past 公示截止期, one deleted at the source and one corrected: each target follows; the
    province's backflow goes to the city platform only; the public-facing target gets ID numbers masked."""
    city = make_target(credit, "city_credit")
    province = make_target(credit, "province_share", forward_backflow=False, signature="sm3")
    public = make_target(credit, "city_portal", clear=False, auth="bearer")
    local = credit.add(10)
    backflow = credit.add(4, origin="省回流", prefix="S")
    platforms = {name: SimulatedPlatform(name=name, algorithm="sm3" if name == "province_share" else "sha256",
                                         auth="bearer" if name == "city_portal" else "hmac")
                 for name in ("city_credit", "province_share", "city_portal")}
    targets = {"city_credit": city, "province_share": province, "city_portal": public}
    with psycopg.connect(pg_url) as conn, platforms["city_credit"].running(), \
            platforms["province_share"].running(), platforms["city_portal"].running():
        for name, target in targets.items():
            settle(conn, registry, target, platforms[name], waits)
        credit.expire(local[0])
        credit.delete(local[1])
        credit.correct(local[2], "罚款（更正）")
        credit.expire(backflow[0])
        for name, target in targets.items():
            settle(conn, registry, target, platforms[name], waits)
            assert_exactly_once(conn, credit, target, platforms[name], takes_backflow=target.forward_backflow)
            withdrawn = {key for (key, action, _content) in platforms[name].applied if action == "withdraw"}
            assert {f"CF:{local[0]}", f"CF:{local[1]}"} <= withdrawn
        assert platforms["city_credit"].records[f"CF:{local[2]}"]["data"]["CF_NR"] == "罚款（更正）"
    sent_up = {key for (key, _action, _content) in platforms["province_share"].applied}
    assert not any(key.startswith("CF:S") for key in sent_up)
    assert {f"CF:{k}" for k in backflow[1:]} <= set(platforms["city_credit"].records)
    for name, simulated in platforms.items():
        bodies = " ".join(content for (_k, _a, content) in simulated.applied)
        assert (ID_NUMBER in bodies) == (name != "city_portal")
    assert "110105********002X" in " ".join(c for (_k, _a, c) in platforms["city_portal"].applied)


@pytest.mark.parametrize("seed", range(6))
def test_random_faults(pg_url, credit, platform, waits, registry, seed: int) -> None:
    """Hundreds of faults of every kind in random order, records added and corrected between runs."""
    rng = random.Random(seed)
    target = make_target(credit, batch_size=rng.choice([3, 5, 8]))
    platform.max_records = 6
    kinds = ["503"] * 10 + ["429"] * 4 + ["malformed"] * 3 + ["partial"] * 3 + ["commit-then-timeout"]
    platform.retry_after = "0"
    with psycopg.connect(pg_url) as conn:
        for _ in range(4):
            keys = credit.add(rng.randint(20, 40))
            for key in rng.sample(keys, 3):
                credit.correct(key, f"更正{rng.random():.6f}")
            platform.faults = [rng.choice(kinds) for _ in range(30)]
            settle(conn, registry, target, platform, waits, rounds=200)
        assert_exactly_once(conn, credit, target, platform)
    assert platform.injected >= 70
