"""The demo departments' earlier weeks: small past deliveries, so that monitoring has a history to judge.

The demo runs one day, but 监控 is about what came before it: which periods a department owed and
missed, and how a batch compares with the source's own history. :func:`seed_history` lands, before
the day's DAG runs, the deliveries two departments made in the weeks before the demo day — through
the platform's own landing path (:func:`huiju.landing.land_file`, then validation and publication,
as ``huiju land`` does), each with the time it arrived (``received_at``: the way a department's
archive of earlier submissions is imported when it joins the platform):

* :data:`MISSING_SOURCE` (税务局's 行政处罚) sent its daily file every working day except one
  (:func:`missed_day`): a period already past its deadline long enough for the 催报 ladder to
  reach the leader (overdue notice, then escalation) on the day after the demo day;
* :data:`ANOMALY_SOURCE` (市场监管局's 行政处罚) sent a small file every day for five weeks (its
  system exports on weekends too), so the demo day's batch, of the usual demo size, is far
  off its history (预测预警: compared with the same weekday's batches).

History batches are small (:data:`HISTORY_ROWS` rows, too few for a deliberate defect) and
written under ``folder`` (a department's own disk, never the inbox the ingest collects), each
file named by its business day like the day's. Everything derives from the demo's seed and day:
the demo run twice lands nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from huiju_demo.penalties import generate_penalty_file

from huiju.landing import land_file
from huiju.monitoring.obligations import rule_of
from huiju.registry import Registry
from huiju.settings import TIMEZONE
from huiju.validation import publish_load, validate_load
from huiju.workdays import WorkCalendar, work_calendar

MISSING_SOURCE = "swj_penalty"
ANOMALY_SOURCE = "scjgj_penalty"
ANOMALY_WEEKS = 5  # the anomaly check's default min_history, of the demo day's weekday
MISSING_WORKING_DAYS = 10  # how far back the missing source's history goes, in working days before the gap
HISTORY_ROWS = (9, 11, 10, 12, 8, 10, 11)  # rows per history batch, in turn: a small, slightly varying size
ARRIVAL = time(9, 30)  # a day's file arrives the next morning


@dataclass(frozen=True)
class HistoryBatch:
    """One past delivery landed for the demo: which source, business day, arrival and rows."""

    source_id: str
    data_date: date
    received_at: datetime
    load_id: str
    rows: int

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable form (the e2e test adds these rows to the day's)."""
        return {"source_id": self.source_id, "data_date": self.data_date.isoformat(),
                "received_at": self.received_at.isoformat(), "load_id": self.load_id, "rows": self.rows}


@dataclass
class DemoHistory:
    """What :func:`seed_history` landed, the period the missing source did not deliver and when it turned late."""

    missed: date
    overdue_on: date  # the first day its 催报 (overdue notice) is due, before the leader hears of it
    batches: list[HistoryBatch] = field(default_factory=list)

    def lines(self, registry: Registry) -> list[str]:
        """What to print: the history per source, and the gap."""
        out = []
        for source_id in (MISSING_SOURCE, ANOMALY_SOURCE):
            mine = [b for b in self.batches if b.source_id == source_id]
            if mine:
                out.append(f"history: {len(mine)} earlier batches of {source_id} ({mine[0].data_date} … "
                           f"{mine[-1].data_date}, {min(b.rows for b in mine)}–{max(b.rows for b in mine)} rows)")
        dept = registry.departments[registry.source(MISSING_SOURCE).department]
        out.append(f"history: {dept.name} ({MISSING_SOURCE}) sent nothing for {self.missed} (overdue from "
                   f"{self.overdue_on})")
        return out

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable form."""
        return {"missed": {"source_id": MISSING_SOURCE, "period": self.missed.isoformat(),
                           "overdue_on": self.overdue_on.isoformat()},
                "batches": [b.to_dict() for b in self.batches]}


def missed_day(registry: Registry, as_of: date, cal: WorkCalendar) -> tuple[date, date]:
    """The working day :data:`MISSING_SOURCE` missed, the latest whose 催报 reaches the leader by ``as_of``;
    and the first day its overdue notice is due (the day after its last on-time day).

    Its next day is a working day too, so the next file (which covers the next day) leaves the gap open.
    """
    rule = rule_of(registry.source(MISSING_SOURCE))
    assert rule is not None and rule.period == "day"  # the demo's own configuration
    day = as_of - timedelta(days=1)
    while True:
        if cal.is_working_day(day) and cal.is_working_day(day + timedelta(days=1)):
            late_after = cal.add_working_days(cal.add_working_days(day, rule.due_working_days),
                                              rule.grace_working_days)
            if cal.working_days_between(late_after, as_of) >= rule.escalate_after_working_days:
                return day, late_after + timedelta(days=1)
        day -= timedelta(days=1)


def history_days(registry: Registry, day: date, as_of: date,
                 cal: WorkCalendar | None = None) -> tuple[date, dict[str, list[date]]]:
    """The missed day, and per source the business days of its earlier deliveries (each before ``day``)."""
    cal = cal or work_calendar()
    missed, _ = missed_day(registry, as_of, cal)
    start = missed
    for _ in range(MISSING_WORKING_DAYS):
        start = cal.last_working_day(start - timedelta(days=1))
    missing = [d for d in cal.working_days_from(start, day - timedelta(days=1)) if d != missed]
    anomaly = [day - timedelta(days=n) for n in range(7 * ANOMALY_WEEKS, 0, -1)]
    return missed, {MISSING_SOURCE: missing, ANOMALY_SOURCE: anomaly}


def seed_history(landing: psycopg.Connection, validation: psycopg.Connection, registry: Registry, day: date,
                 as_of: date, folder: Path, *, seed: int = 20261120, now: datetime | None = None) -> DemoHistory:
    """Land (validate, publish) the earlier deliveries of :data:`MISSING_SOURCE` and :data:`ANOMALY_SOURCE`.

    ``landing`` and ``validation`` are autocommit connections as those components' roles (as the ingest
    DAGs' tasks connect).

    ``as_of`` is the day monitoring judges (the morning after ``day``). Batches arrive the morning
    after their business day, never later than ``now``. Each batch commits on its own; a batch
    already landed is left as it is.
    """
    zone = ZoneInfo(TIMEZONE)
    now = now or datetime.now(zone)
    cal = work_calendar()
    missed, days = history_days(registry, day, as_of, cal)
    history = DemoHistory(missed, missed_day(registry, as_of, cal)[1])
    for source_id, business_days in days.items():
        source = registry.source(source_id)
        for index, business_day in enumerate(business_days):
            rows = HISTORY_ROWS[index % len(HISTORY_ROWS)]
            written = generate_penalty_file(registry, source, folder, business_day, rows, seed)
            assert written.path is not None and not written.bad_rows  # too few rows for a defect
            arrived = min(datetime.combine(business_day + timedelta(days=1), ARRIVAL, zone), now)
            landed = land_file(landing, registry, source, written.path, data_date=business_day, received_at=arrived)
            if landed.outcome == "landed":
                # Verdicts only: Great Expectations' per-expectation report of an archived batch is not what
                # monitoring reads, and costs seconds a batch (the day's batches are validated in full).
                validate_load(validation, registry, landed.load_id, run_gx=False)
                publish_load(validation, landed.load_id)
            history.batches.append(HistoryBatch(source_id, business_day, arrived, landed.load_id, rows))
    return history
