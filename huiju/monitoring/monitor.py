"""The monitoring run (``huiju_monitor`` DAG, ``huiju monitor``): rebuild the ledger, queue the 催报 ladder,
and say what is overdue, how the month went and what the calendar does not know."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg.rows import dict_row

from huiju.monitoring.ledger import backfill, last_full_rebuild, refresh, today
from huiju.monitoring.obligations import Period
from huiju.monitoring.reminders import LOOKBACK_DAYS, Reminder, ReminderReport, queue_reminders
from huiju.monitoring.scorecards import month_bounds, percent, ranking, render_ranking, scorecards
from huiju.registry import Registry
from huiju.workdays import WorkCalendar, sync_work_calendar, work_calendar

log = logging.getLogger(__name__)

#: A ledger row with nothing usable as of the day ``%(as_of)s``: nothing delivered, or delivered only after the
#: day (Asia/Shanghai). Written as two index conditions (migration 301), not as the day of ``delivered_at``.
DELIVERED_AFTER = "delivered_at >= ((%(as_of)s::date + 1)::timestamp at time zone 'Asia/Shanghai')"
UNANSWERED = f"(delivered_at is null or {DELIVERED_AFTER})"


@dataclass
class MonitorReport:
    """What one monitoring run found and did."""

    as_of: date
    periods: int
    calendar_gaps: tuple[int, ...]
    warnings: list[str]
    reminders: ReminderReport


def calendar_gap_warnings(years: tuple[int, ...]) -> list[str]:
    """The stewards' warning (Chinese) for each year whose working days no calendar holds."""
    return [f"工作日历缺少{year}年的法定节假日和调休安排：涉及{year}年的报送截止日期无法计算，相关催报暂停。"
            f"请在国务院办公厅发布通知后添加 config/calendar/{year}.yaml。" for year in years]


def run_monitor(conn: psycopg.Connection, registry: Registry, as_of: date | None = None,
                cal: WorkCalendar | None = None, *, full: bool | None = None) -> MonitorReport:
    """Bring the submission ledger up to ``as_of`` (default: today) and queue the notices it calls for.

    The first run of a day (``full`` None: when the ledger was last wholly rebuilt before ``as_of``)
    rebuilds the whole ledger (:func:`~huiju.monitoring.ledger.backfill`); later runs rebuild only the
    periods the 催报 ladder can still act on. Commits the ledger, then queues the notices in their own
    transaction. Calendar gaps are logged as warnings and go into the stewards' digest. First it writes the
    calendar into the warehouse (``ops.work_calendar``), so a newly added override year reaches SQL deadlines
    (``ops.add_working_days``, the 双公示 timeliness) within the hour.
    """
    as_of = as_of or today()
    cal = cal or work_calendar()
    sync_work_calendar(conn, cal)
    if full is None:
        last = last_full_rebuild(conn)
        full = last is None or last < as_of
    with conn.transaction():
        owed = backfill(conn, registry, as_of, cal) if full else \
            refresh(conn, registry, None, as_of, cal, recent_days=LOOKBACK_DAYS + 1)
    gaps = tuple(sorted(owed.calendar_gaps))
    warnings = calendar_gap_warnings(gaps)
    for warning in warnings:
        log.warning("calendar: %s", warning)
    reminders = queue_reminders(conn, registry, as_of, cal=cal, warnings=warnings)
    return MonitorReport(as_of, len(owed.dues), gaps, warnings, reminders)


def overdue_list(conn: psycopg.Connection, as_of: date, cal: WorkCalendar | None = None, *,
                 since: date | None = None) -> list[Reminder]:
    """Every period past its last on-time day with nothing usable as of ``as_of``, as ``overdue`` reminders.

    ``since``: only periods whose last on-time day is on or after it (the stewards' dashboard: the ladder's window).
    """
    cal = cal or work_calendar()
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "select department, source_id, period, period_start, period_end, due_date, late_after, batches > 0"
            " and (first_received_at at time zone 'Asia/Shanghai')::date <= %(as_of)s as held, rows_held"
            f" from ops.submissions where late_after < %(as_of)s and late_after >= %(since)s and {UNANSWERED}"
            " order by late_after, department, source_id", {"as_of": as_of, "since": since or date.min}).fetchall()
    return [Reminder("overdue", r["department"], r["source_id"], r["period"],
                     Period(r["period"], r["period_start"], r["period_end"]).label(), r["due_date"], r["late_after"],
                     r["held"], int(r["rows_held"]) if r["held"] else 0,
                     cal.working_days_between(r["late_after"], as_of)) for r in rows]


@dataclass(frozen=True)
class PublicationTimeliness:
    """One department's 双公示 decisions received in a month: how many, how many late, how many not judged."""

    department: str
    received: int
    late: int
    unknown: int


def publication_timeliness(conn: psycopg.Connection, month: str) -> list[PublicationTimeliness]:
    """Per department, the 行政处罚/行政许可 decision versions received in ``month`` and how many were late.

    Reads the dbt view ``credit.credit_publication_timeliness`` (7 working days from the decision date);
    empty before dbt first built it. ``unknown``: decisions the calendar cannot judge (a year it lacks).
    """
    start, following = month_bounds(month)
    # From the catalog: to_regclass would need usage on the schema, which the role has only once dbt granted it.
    built, readable = conn.execute(
        "select true, has_schema_privilege('credit', 'usage') and has_table_privilege(c.oid, 'select')"
        " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'credit' and c.relname = 'credit_publication_timeliness'").fetchone() or (False, False)
    if built and not readable:
        log.warning("双公示超期: credit.credit_publication_timeliness is not granted to %s; the next dbt build will",
                    conn.info.user)
    if not readable:
        return []
    rows = conn.execute(
        "select source_department, count(*), count(*) filter (where not is_on_time),"
        " count(*) filter (where is_on_time is null)"
        " from credit.credit_publication_timeliness where received_date >= %s and received_date < %s"
        " group by source_department order by count(*) filter (where not is_on_time) desc, source_department",
        (start, following)).fetchall()
    return [PublicationTimeliness(*row) for row in rows]


def render_monitor(conn: psycopg.Connection, registry: Registry, report: MonitorReport, month: str) -> str:
    """The overdue list, the month's scorecard and ranking, and the calendar warnings, as text."""
    lines = [f"Monitoring as of {report.as_of}: {report.periods} period(s) owed, "
             f"{len(report.reminders.queued)} notice(s) queued now", ""]
    return "\n".join([*lines, render_overview(conn, registry, report.as_of, month, report.warnings)])


def render_overview(conn: psycopg.Connection, registry: Registry, as_of: date, month: str,
                    warnings: list[str]) -> str:
    """What the ledger says as of ``as_of`` (after a monitoring run): overdue list, ``month``'s scorecard, warnings."""
    lines = []
    late = overdue_list(conn, as_of)
    lines.append(f"逾期未报 (overdue): {len(late)}")
    for item in late:
        dept = registry.departments.get(item.department)
        source = registry.sources.get(item.source_id)
        lines.append(f"  {dept.name if dept else item.department}《{source.title if source else item.source_id}》"
                     f"{item.period_label}：{'暂缓入库' if item.held else '未报送'}，截止{item.due_date}，"
                     f"逾期{item.working_days_late}个工作日")
    lines += ["", render_ranking(registry, ranking(conn, month), month), ""]
    lines.append(f"数据项 (sources), {month}:")
    for card in scorecards(conn, month):
        if card.source_id is None or not (card.periods_due or card.rows_received):
            continue
        lines.append(f"  {card.source_id:<24} 应报{card.periods_due:>3} 已报{card.periods_delivered:>3} "
                     f"及时率 {percent(card.timeliness):>6} 完整率 {percent(card.completeness):>6} "
                     f"合格率 {percent(card.quality):>6} 整改率 {percent(card.correction):>6}")
    timeliness = publication_timeliness(conn, month)
    lines += ["", f"双公示超期 (decisions received more than 7 working days after the decision), {month}: "
                  f"{sum(t.late for t in timeliness)}"]
    for item in timeliness:
        dept = registry.departments.get(item.department)
        lines.append(f"  {dept.name if dept else item.department}：收到{item.received}条，超期{item.late}条"
                     + (f"，{item.unknown}条因工作日历缺年份或无决定日期无法判定" if item.unknown else ""))
    for warning in warnings:
        lines += ["", f"WARNING (calendar): {warning}"]
    return "\n".join(lines)
