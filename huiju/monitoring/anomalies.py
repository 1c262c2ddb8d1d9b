"""Anomaly alerts (预测预警): a batch far off its source's own history is flagged to stewards before publication.

Each batch that passed validation is compared with the source's last comparable batches
(``validated`` or ``published``, at most ``anomaly.history`` of them, not later than its own
business day; for a daily source only those of the same weekday, so a quiet Sunday is not
compared with a busy Monday). Two figures are judged on a robust baseline, the median and the
median absolute deviation (MAD, scaled by 1.4826 to a standard deviation's size), which a few
earlier odd batches cannot drag:

* the row count, both ways (a batch a tenth of the usual size is usually a partial extract, ten
  times the usual size a duplicated one), when it is more than ``threshold`` spreads from the
  median *and* at least ``min_change`` away relative to it (a source that always sends exactly
  1,000 rows has no spread; 1,010 rows is still not news);
* the pass rate (accepted / received), only when it drops, by ``threshold`` spreads and at least
  ``pass_rate_drop`` points.

Nothing is judged before ``min_history`` comparable batches exist. A finding is stored in
``ops.load_anomalies`` and announced to the stewards once per batch (dedupe key
``anomaly:<load_id>``); with ``action: hold`` the batch is held instead of going on, until a
steward releases it (:func:`release_hold`, ``huiju release-anomaly <load_id>``) or the department
sends it again.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import psycopg

from huiju.ledger import LoadRecord, get_load, set_status
from huiju.notices import queue_notice, steward_recipients
from huiju.registry import AnomalySettings, Registry, Source

log = logging.getLogger(__name__)

ROBUST_SIGMA = 1.4826  # MAD × this estimates a normal distribution's standard deviation
ROW_SPREAD_FLOOR = 0.05  # of the median: a source sending the same count every time still has some spread
PASS_RATE_SPREAD_FLOOR = 0.01  # one point
WEEKDAYS = "一二三四五六日"
_SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Finding:
    """One figure of a batch far from its history: ``score`` spreads from the median (negative: below)."""

    metric: str  # rows | pass_rate
    value: float
    median: float
    spread: float
    score: float


@dataclass(frozen=True)
class Verdict:
    """What the comparison of one batch with its history found."""

    load_id: str
    action: str  # alert | hold
    history: int  # comparable batches (fewer than min_history: not judged)
    weekday: int | None  # ISO weekday compared on, None: every day
    findings: tuple[Finding, ...] = ()

    @property
    def hold(self) -> bool:
        """Whether the batch is held for it."""
        return bool(self.findings) and self.action == "hold"

    def summary(self) -> str:
        """One line for the ledger's ``error`` and the logs (English)."""
        parts = [f"{f.metric} {_shown(f.metric, f.value)} vs median {_shown(f.metric, f.median)} "
                 f"({f.score:+.1f} spreads)" for f in self.findings]
        return f"anomaly against {self.history} earlier batches: " + "; ".join(parts)


def _shown(metric: str, value: float) -> str:
    return f"{value:.1%}" if metric == "pass_rate" else f"{value:.0f}"


def robust_baseline(values: Sequence[float], floor: float) -> tuple[float, float]:
    """``(median, spread)``: spread is 1.4826 × the median absolute deviation, at least ``floor``."""
    middle = statistics.median(values)
    mad = statistics.median(abs(v - middle) for v in values)
    return middle, max(ROBUST_SIGMA * mad, floor)


def judge(rows: int, pass_rate: float, history: Sequence[tuple[int, float]],
          settings: AnomalySettings) -> tuple[Finding, ...]:
    """The findings for a batch of ``rows`` rows and ``pass_rate``, against ``history`` ((rows, pass rate) pairs)."""
    if len(history) < settings.min_history:
        return ()
    findings = []
    middle, spread = robust_baseline([r for r, _ in history], 0.0)
    spread = max(spread, ROW_SPREAD_FLOOR * middle, 1.0)
    score = (rows - middle) / spread
    if abs(score) > settings.threshold and abs(rows - middle) >= settings.min_change * max(middle, 1.0):
        findings.append(Finding("rows", rows, middle, spread, score))
    middle, spread = robust_baseline([p for _, p in history], PASS_RATE_SPREAD_FLOOR)
    score = (pass_rate - middle) / spread
    if score < -settings.threshold and middle - pass_rate >= settings.pass_rate_drop:
        findings.append(Finding("pass_rate", pass_rate, middle, spread, score))
    return tuple(findings)


def business_day(load: LoadRecord) -> date:
    """The day a batch belongs to: its data date, else the day it arrived (Asia/Shanghai)."""
    if load.data_date is not None:
        return load.data_date
    return load.received_at.astimezone(_SHANGHAI).date()


def comparable_history(conn: psycopg.Connection, source: Source, load: LoadRecord,
                       weekday: int | None) -> list[tuple[int, float]]:
    """``(rows, pass rate)`` of the source's last comparable batches before ``load`` (newest first)."""
    rows = conn.execute(
        "with days as (select rows_received, rows_accepted, received_at, load_id,"
        "   coalesce(data_date, (received_at at time zone 'Asia/Shanghai')::date) as day"
        "   from ops.loads where source_id = %(source)s and load_id <> %(load)s"
        "   and status in ('validated', 'published') and rows_received is not null)"
        " select rows_received, coalesce(rows_accepted, rows_received) from days"
        " where day <= %(day)s and (%(weekday)s::integer is null or extract(isodow from day) = %(weekday)s)"
        " order by day desc, received_at desc, load_id limit %(limit)s",
        {"source": source.id, "load": load.load_id, "day": business_day(load), "weekday": weekday,
         "limit": source.anomaly.history}).fetchall()
    return [(received, accepted / received if received else 1.0) for received, accepted in rows]


def check_load(conn: psycopg.Connection, source: Source, load: LoadRecord, received: int,
               quarantined: int) -> Verdict | None:
    """Compare a batch just validated with its history and record what is found; None when the source is off.

    Runs in the caller's (validation's) transaction.
    """
    settings = source.anomaly
    if settings.action == "off":
        return None
    weekday_aware = settings.weekday if settings.weekday is not None else source.cadence == "daily"
    weekday = business_day(load).isoweekday() if weekday_aware else None
    history = comparable_history(conn, source, load, weekday)
    pass_rate = (received - quarantined) / received if received else 1.0
    verdict = Verdict(load.load_id, settings.action, len(history), weekday,
                      judge(received, pass_rate, history, settings))
    if len(history) < settings.min_history:
        log.info("%s: %s not judged for anomalies: %d comparable earlier batches, %d needed", source.id,
                 load.load_id, len(history), settings.min_history)
    for f in verdict.findings:
        conn.execute(
            "insert into ops.load_anomalies (load_id, metric, value, median, spread, score, history, weekday, action)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s) on conflict (load_id, metric) do nothing",
            (load.load_id, f.metric, f.value, f.median, f.spread, f.score, verdict.history, weekday, settings.action))
    if verdict.findings:
        log.warning("%s: %s: %s → %s", source.id, load.load_id, verdict.summary(), settings.action)
    return verdict


def queue_anomaly_notice(conn: psycopg.Connection, registry: Registry, verdict: Verdict) -> int | None:
    """Tell the stewards about an anomalous batch (once per batch), in the caller's transaction."""
    if not verdict.findings:
        return None
    load = get_load(conn, verdict.load_id)
    if load is None:
        return None
    source = registry.source(load.source_id)
    dept = registry.departments.get(load.department)
    dept_name = dept.name if dept is not None else load.department
    compared = f"近{verdict.history}批（同为星期{WEEKDAYS[verdict.weekday - 1]}）" if verdict.weekday \
        else f"近{verdict.history}批"
    lines = []
    for f in verdict.findings:
        if f.metric == "rows":
            lines.append(f"  · 行数：{f.value:.0f}行，{compared}中位数{f.median:.0f}行"
                         f"（{'高' if f.score > 0 else '低'}出{abs(f.score):.1f}个稳健标准差）")
        else:
            lines.append(f"  · 合格率：{f.value:.1%}，{compared}中位数{f.median:.1%}"
                         f"（低出{abs(f.score):.1f}个稳健标准差）")
    outcome = (f"按该数据项的设置，本批次已暂缓发布，待数据管理员核实：确认无误后放行"
               f"（huiju release-anomaly {load.load_id}），否则请报送单位整批重新报送。" if verdict.hold
               else "本批次将照常发布；请核实，如有误请联系报送单位重新报送。")
    body = (f"数据管理员：\n\n{dept_name}报送的《{source.title}》批次「{load.reference}」"
            f"（业务日期{business_day(load):%Y-%m-%d}）与该数据项自身的历史明显不符：\n"
            + "\n".join(lines) + f"\n\n{outcome}\n\n批次编号：{load.load_id}\n（本邮件由汇聚平台自动发送）")
    first = verdict.findings[0]
    what = (f"行数{first.value:.0f}（历史中位数{first.median:.0f}）" if first.metric == "rows"
            else f"合格率{first.value:.1%}（历史中位数{first.median:.1%}）")
    subject = f"【数据异常预警】{dept_name}《{source.title}》{load.reference}：{what}"
    return queue_notice(conn, dedupe_key=f"anomaly:{load.load_id}", kind="anomaly", subject=subject, body=body,
                        # No department: the notice is the stewards' (the portal lists a department's notices).
                        recipients=steward_recipients(), department=None, source_id=load.source_id,
                        load_id=load.load_id)


@dataclass(frozen=True)
class AnomalyRow:
    """One anomalous figure of a batch, as stewards (and the demo's summary) list them."""

    load_id: str
    source_id: str
    reference: str
    metric: str
    value: float
    median: float
    history: int
    action: str
    status: str  # the batch's status now
    detected_at: datetime


def recent_anomalies(conn: psycopg.Connection, since: datetime) -> list[AnomalyRow]:
    """Every anomaly found since ``since``, newest first."""
    rows = conn.execute(
        "select a.load_id, l.source_id, l.reference, a.metric, a.value, a.median, a.history, a.action, l.status,"
        " a.detected_at from ops.load_anomalies a join ops.loads l using (load_id)"
        " where a.detected_at >= %s order by a.detected_at desc, a.load_id, a.metric", (since,)).fetchall()
    return [AnomalyRow(*row) for row in rows]


def render_anomalies(rows: Sequence[AnomalyRow]) -> str:
    """The anomalies as lines for a terminal: source, batch, figure against its median, what was done."""
    if not rows:
        return "预测预警: none"
    lines = ["预测预警:"]
    for r in rows:
        done = {"alert": "stewards alerted", "hold": "held for a steward"}[r.action]
        lines.append(f"  {r.source_id} {r.reference}: {r.metric} {_shown(r.metric, r.value)} vs median "
                     f"{_shown(r.metric, r.median)} of {r.history} batches → {done} ({r.status})")
    return "\n".join(lines)


def release_hold(conn: psycopg.Connection, load_id: str, released_by: str) -> bool:
    """A steward releases a batch held as anomalous: it becomes ``validated`` and the next run publishes it.

    False when the batch is not held for an anomaly (held over its tolerance: the department
    must send it again). Commits.
    """
    with conn.transaction():
        load = get_load(conn, load_id, for_update=True)
        held = conn.execute("select count(*) from ops.load_anomalies where load_id = %s and action = 'hold'"
                            " and released_at is null", (load_id,)).fetchone()[0]
        if load is None or load.status != "held" or not held:
            return False
        conn.execute("update ops.load_anomalies set released_at = now(), released_by = %s where load_id = %s",
                     (released_by, load_id))
        set_status(conn, load_id, "validated", error=None)
    log.info("%s released by %s after an anomaly hold", load_id, released_by)
    return True

