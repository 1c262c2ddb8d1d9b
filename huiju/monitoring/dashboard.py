"""What the stewards' dashboard shows (监控看板), read from the ledger: the plugin's pages only render it.

Everything here reads; nothing writes. The dashboard connects as ``huiju_dashboard`` (migration 300:
select on ``ops`` and ``quarantine``, nothing else) through ``warehouse.connect(role="dashboard")``.

* :func:`overview` — as of a day: how many sources are in each state (their latest period ended before the
  day: 按时报送 / 逾期报送 / 未报送 / 暂缓入库 …), the overdue periods per department with how far up the 催报
  ladder they are, the month's 通报 and every department's scorecard trend over the last twelve months
  (from the ledger's monthly summary, ``ops.submission_months``). Its figures are aggregated in SQL: the
  page stays the same size whether 30 or 3,000 sources report;
* :func:`source_states` — each source's state; :func:`overdue` — the overdue list, period by period, with the
  step of the 催报 ladder each has reached (the pages 各数据项报送状态 and 逾期未报明细);
* :func:`department_detail` — one department: its sources' cards for the month, its latest batches
  (anomalies flagged);
* :func:`archived_reports` / :func:`archived_report` — the scheduled reports' archive (分析报告,
  ``ops.analysis_reports``): which report of which period, read as of when, and its files under ``var/``;
* :func:`batch_detail` — one batch of a department: Great Expectations' results of each expectation
  (``ops.validation_results``, where GX's Data Docs would have needed assets from the internet),
  and its quarantined rows, every value masked (:func:`huiju.masking.mask_text`) though quarantine already
  keeps them masked.

Rates and scores are :mod:`huiju.monitoring.scorecards`' own; the overdue list is
:func:`huiju.monitoring.monitor.overdue_list`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from huiju.masking import mask_text
from huiju.monitoring.monitor import DELIVERED_AFTER, UNANSWERED, overdue_list
from huiju.monitoring.reminders import LEVEL_LABELS, LEVELS, LOOKBACK_DAYS, Reminder, dedupe_key
from huiju.monitoring.scorecards import Ranked, Scorecard, frozen_rows, month_bounds, ranking, scorecards_between
from huiju.registry import Registry
from huiju.rules import RULES
from huiju.workdays import WorkCalendar, work_calendar

#: A period's status (``ops.submissions.status``) as the stewards read it.
STATE_LABELS = {"on_time": "按时报送", "late": "逾期报送", "missing": "未报送", "held": "暂缓入库",
                "pending": "待报送", "unknown": "无法判定", "unmonitored": "不考核"}
#: A batch's status (``ops.loads.status``) as the stewards read it.
BATCH_LABELS = {"received": "已接收", "validated": "已校验", "published": "已发布", "held": "暂缓入库",
                "failed": "失败"}
TREND_MONTHS = 12
REPORTS_SHOWN = 200
#: A department's batches a page: a year of a busy department's batches is thousands of rows, and a page of 50 is
#: what a steward reads; rendering 200 rows cost more than the page's SQL (``dashboard_300_sources``).
BATCHES_PER_PAGE = 50
ROWS_SHOWN = 500

# Per source, one probe of the index on (source_id, period_end) (migration 300).
_LATEST_PERIODS = """
select s.* from unnest(%(sources)s::text[]) as wanted (source_id)
 cross join lateral (
    select source_id, department, period, period_start, period_end, due_date, late_after, status, batches,
           rows_received, rows_accepted, rows_quarantined, delivered_at, last_received_at
      from ops.submissions
     where source_id = wanted.source_id and period_end < %(as_of)s
     order by period_end desc
     limit 1) s
"""

# How many sources are in each state: the same probe per source, counted.
_STATE_COUNTS = f"""
select s.status, count(*) from ({_LATEST_PERIODS}) s group by s.status
"""

# The overdue periods in the ladder's window (as :func:`huiju.monitoring.monitor.overdue_list` finds them), each
# with the highest 催报 step queued for it (its notices' keys, :func:`huiju.monitoring.reminders.dedupe_key`),
# counted per department.
_OVERDUE_BY_DEPARTMENT = """
with late as (
    select department, source_id, period, late_after,
           batches > 0 and (first_received_at at time zone 'Asia/Shanghai')::date <= %(as_of)s as held
      from ops.submissions
     where late_after < %(as_of)s and late_after >= %(since)s and {unanswered}
),
queued as (
    -- monitor:<level>:<department>:<source>:<period> (no part holds a colon), the highest level per period
    select split_part(dedupe_key, ':', 3) as department, split_part(dedupe_key, ':', 4) as source_id,
           split_part(dedupe_key, ':', 5) as period,
           max(array_position(%(levels)s::text[], split_part(dedupe_key, ':', 2))) as step
      from ops.notices
     where kind = any(%(kinds)s) and created_at >= %(notices_from)s and created_at < %(notices_to)s
     group by 1, 2, 3
),
stepped as (
    select l.*, q.step from late l left join queued q using (department, source_id, period)
)
select department, count(*) as periods, count(distinct source_id) as sources,
       count(*) filter (where held) as held, min(late_after) as earliest,
       count(*) filter (where step is null) as unnotified,
       {steps}
  from stepped
 group by department
 order by count(*) desc, department
"""

_BATCH = """
select l.load_id, l.source_id, l.reference, l.status, l.rows_received, l.rows_accepted, l.rows_quarantined,
       l.received_at, l.data_date, l.error,
       exists (select from ops.load_anomalies a where a.load_id = l.load_id) as anomalous
  from ops.loads l
 where l.department = %(department)s
"""


@dataclass(frozen=True)
class SourceState:
    """A source's latest period ended before the day, and what came for it."""

    department: str
    department_name: str
    source_id: str
    title: str
    state: str  # a key of STATE_LABELS
    period: str | None = None
    due_date: date | None = None
    batches: int = 0
    rows_received: int = 0
    rows_quarantined: int = 0
    last_received_at: datetime | None = None

    @property
    def state_label(self) -> str:
        """The state in Chinese."""
        return STATE_LABELS[self.state]


@dataclass(frozen=True)
class OverdueItem:
    """An overdue period and the highest step of the 催报 ladder queued for it (None: none yet)."""

    reminder: Reminder
    department_name: str
    title: str
    ladder_step: str | None
    notified_at: datetime | None

    @property
    def ladder_label(self) -> str:
        """The ladder's step in Chinese (尚未催报 before any)."""
        return LEVEL_LABELS[self.ladder_step] if self.ladder_step else "尚未催报"


@dataclass(frozen=True)
class OverdueDepartment:
    """A department's overdue periods in the ladder's window: how many, of how many sources, how far up the ladder."""

    department: str
    department_name: str
    periods: int
    sources: int
    held: int  # of which only batches held over tolerance arrived
    earliest_late_after: date  # the oldest one's last on-time day
    working_days_late: int  # the oldest one's working days late
    unnotified: int  # periods no 催报 step has been queued for yet
    steps: dict[str, int]  # ladder level → periods whose highest step queued is that level


@dataclass(frozen=True)
class Overview:
    """The dashboard's first page."""

    as_of: date
    month: str
    state_counts: dict[str, int]  # every state's label, zero included → how many sources are in it
    overdue_departments: list[OverdueDepartment]  # late for at most the ladder's window, most periods first
    older_overdue: int  # periods late for longer, still without anything usable
    ranked: list[Ranked]
    trend: dict[str, list[Scorecard]]  # department → its monthly totals, oldest first
    months: list[str]  # the trend's months, oldest first
    names: dict[str, str] = field(default_factory=dict)  # department code → name

    @property
    def overdue_periods(self) -> int:
        """Periods overdue within the ladder's window (every department)."""
        return sum(d.periods for d in self.overdue_departments)


@dataclass(frozen=True)
class Batch:
    """One batch of a department (``ops.loads``), masked where a person reads it."""

    load_id: str
    source_id: str
    title: str
    reference: str
    status: str
    rows_received: int | None
    rows_accepted: int | None
    rows_quarantined: int | None
    received_at: datetime
    data_date: date | None
    error: str
    anomalous: bool

    @property
    def status_label(self) -> str:
        """The batch's status in Chinese."""
        return BATCH_LABELS.get(self.status, self.status)


@dataclass(frozen=True)
class DepartmentDetail:
    """A department's page: its month's cards (total first, then each source) and a page of its batches."""

    department: str
    name: str
    month: str
    cards: list[Scorecard]
    batches: list[Batch]  # newest first, the page ``page`` of ``pages``
    batch_count: int = 0
    page: int = 1
    pages: int = 1


@dataclass(frozen=True)
class QuarantinedRow:
    """A quarantined row: its number in the department's file, each broken rule, the reasons (masked)."""

    row_no: int
    violations: list[dict[str, str]]  # header, value, reason
    reasons: str


@dataclass(frozen=True)
class QualityCheck:
    """One expectation Great Expectations ran on the batch (``ops.validation_results``)."""

    header: str  # the department's column header (the field's name when the source does not send it)
    rule: str
    rule_label: str  # 必填, 枚举, 统一社会信用代码 …
    expectation: str
    success: bool
    unexpected_count: int | None


@dataclass(frozen=True)
class BatchDetail:
    """A batch, its quality checks and its quarantined rows (the first :data:`ROWS_SHOWN`), all masked."""

    batch: Batch
    department_name: str
    rows: list[QuarantinedRow]
    total_rows: int
    checks: list[QualityCheck] = field(default_factory=list)  # empty: validated without GX's report


def months_back(month: str, count: int) -> list[str]:
    """The ``count`` months ending with ``month``, oldest first (``2026-12``, 3 → 2026-10 … 2026-12)."""
    year, number = int(month[:4]), int(month[5:7])
    index = year * 12 + number - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


def default_month(as_of: date) -> str:
    """The month shown when none is asked for: the last day judged in full's (``as_of`` is the morning after it)."""
    return (as_of - timedelta(days=1)).strftime("%Y-%m")


def _department_name(registry: Registry, code: str) -> str:
    department = registry.departments.get(code)
    return department.name if department is not None else code


def _source_title(registry: Registry, source_id: str) -> str:
    source = registry.sources.get(source_id)
    return source.title if source is not None else source_id


def source_states(conn: psycopg.Connection, registry: Registry, as_of: date) -> list[SourceState]:
    """Every source of the registry, by department: the state of its latest period ended before ``as_of``.

    A source with no such period in the ledger (no obligation, or none settled yet) is ``unmonitored``.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        latest = {row["source_id"]: row for row in cur.execute(
            _LATEST_PERIODS, {"as_of": as_of, "sources": list(registry.sources)}).fetchall()}
    states = []
    for source_id, source in registry.sources.items():
        department = source.department
        row = latest.get(source_id)
        common = {"department": department, "department_name": _department_name(registry, department),
                  "source_id": source_id, "title": source.title}
        if row is None:
            states.append(SourceState(state="unmonitored", **common))
            continue
        states.append(SourceState(state=row["status"], period=row["period"], due_date=row["due_date"],
                                  batches=row["batches"], rows_received=row["rows_received"],
                                  rows_quarantined=row["rows_quarantined"],
                                  last_received_at=row["last_received_at"], **common))
    return sorted(states, key=lambda s: (s.department, s.source_id))


def state_counts(conn: psycopg.Connection, registry: Registry, as_of: date) -> dict[str, int]:
    """How many of the registry's sources are in each state as of ``as_of`` (:func:`source_states`, counted in SQL)."""
    counts = dict.fromkeys(STATE_LABELS, 0)
    rows = conn.execute(_STATE_COUNTS, {"as_of": as_of, "sources": list(registry.sources)}).fetchall()
    for state, count in rows:
        counts[state] += count
    counts["unmonitored"] += len(registry.sources) - sum(count for _, count in rows)
    return counts


def counted(states: list[SourceState]) -> dict[str, int]:
    """How many of ``states`` are in each state (every label, zero included)."""
    counts = dict.fromkeys(STATE_LABELS, 0)
    for state in states:
        counts[state.state] += 1
    return counts


def overdue_since(as_of: date) -> date:
    """The first last-on-time day the dashboard's overdue list shows: the 催报 ladder's window (older: a count)."""
    return as_of - timedelta(days=LOOKBACK_DAYS)


def older_overdue(conn: psycopg.Connection, as_of: date) -> int:
    """Periods overdue since before the ladder's window, still without anything usable."""
    # Two counts, not one with OR: each is an index-only scan (migration 301) instead of a heap visit per period.
    return conn.execute(
        "select (select count(*) from ops.submissions where late_after < %(since)s and delivered_at is null)"
        f" + (select count(*) from ops.submissions where late_after < %(since)s and {DELIVERED_AFTER})",
        {"since": overdue_since(as_of), "as_of": as_of}).fetchone()[0]


def overdue(conn: psycopg.Connection, registry: Registry, as_of: date,
            cal: WorkCalendar | None = None) -> list[OverdueItem]:
    """The overdue list as of ``as_of`` (periods late for at most the ladder's window, :func:`overdue_since`), each
    with the highest 催报 step queued for it in the outbox."""
    late = overdue_list(conn, as_of, cal, since=overdue_since(as_of))
    # The ladder's notices of those periods, by kind (monitor_<level>): queued within the window, up to the day.
    queued = dict(conn.execute(
        "select dedupe_key, created_at from ops.notices where kind = any(%s) and created_at >= %s and created_at < %s",
        ([f"monitor_{level}" for level in LEVELS], *_ladder_window(as_of))).fetchall()) if late else {}
    items = []
    for reminder in late:
        step, at = None, None
        for level in LEVELS:  # lowest to highest: the last one queued is the step reached
            key = dedupe_key(level, reminder.department, reminder.source_id, reminder.period)
            if key in queued:
                step, at = level, queued[key]
        items.append(OverdueItem(reminder, _department_name(registry, reminder.department),
                                 _source_title(registry, reminder.source_id), step, at))
    return items


def _ladder_window(as_of: date) -> tuple[date, date]:
    """When the ladder's notices of the overdue periods were queued: within the window, up to the day."""
    return overdue_since(as_of) - timedelta(days=LOOKBACK_DAYS), as_of + timedelta(days=1)


def overdue_by_department(conn: psycopg.Connection, registry: Registry, as_of: date,
                          cal: WorkCalendar | None = None) -> list[OverdueDepartment]:
    """The overdue list (:func:`overdue`) counted per department in SQL, most overdue periods first."""
    cal = cal or work_calendar()
    notices_from, notices_to = _ladder_window(as_of)
    steps = ", ".join(f"count(*) filter (where step = {number}) as {level}" for number, level in enumerate(LEVELS, 1))
    query = _OVERDUE_BY_DEPARTMENT.format(unanswered=UNANSWERED, steps=steps)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, {"as_of": as_of, "since": overdue_since(as_of), "levels": list(LEVELS),
                                   "kinds": [f"monitor_{level}" for level in LEVELS],
                                   "notices_from": notices_from, "notices_to": notices_to}).fetchall()
    return [OverdueDepartment(row["department"], _department_name(registry, row["department"]), row["periods"],
                              row["sources"], row["held"], row["earliest"],
                              cal.working_days_between(row["earliest"], as_of), row["unnotified"],
                              {level: row[level] for level in LEVELS}) for row in rows]


def overview(conn: psycopg.Connection, registry: Registry, as_of: date, month: str | None = None,
             cal: WorkCalendar | None = None) -> Overview:
    """The first page: sources' states, the overdue list, ``month``'s 通报, the trend.

    ``month`` defaults to :func:`default_month`.
    """
    month = month or default_month(as_of)
    month_bounds(month)  # a malformed month fails here, not in SQL
    months = months_back(month, TREND_MONTHS)
    trend: dict[str, list[Scorecard]] = {}
    for card in scorecards_between(conn, months[0], months[-1], by_source=False):
        trend.setdefault(card.department, []).append(card)
    names = {code: dept.name for code, dept in registry.departments.items()}
    return Overview(as_of, month, state_counts(conn, registry, as_of),
                    overdue_by_department(conn, registry, as_of, cal), older_overdue(conn, as_of),
                    ranking(conn, month), trend, months, names)


def _batches(registry: Registry, rows: list[dict]) -> list[Batch]:
    """The batches of ``rows`` (:data:`_BATCH`), masked where a person reads them."""
    return frozen_rows(Batch, ({"load_id": row["load_id"], "source_id": row["source_id"],
                                "title": _source_title(registry, row["source_id"]),
                                "reference": mask_text(row["reference"]), "status": row["status"],
                                "rows_received": row["rows_received"], "rows_accepted": row["rows_accepted"],
                                "rows_quarantined": row["rows_quarantined"], "received_at": row["received_at"],
                                "data_date": row["data_date"], "error": mask_text(row["error"]),
                                "anomalous": row["anomalous"]} for row in rows))


def department_detail(conn: psycopg.Connection, registry: Registry, department: str, month: str,
                      page: int = 1, per_page: int = BATCHES_PER_PAGE) -> DepartmentDetail | None:
    """A department's month (its cards) and page ``page`` of its batches, newest first (a page past the last
    shows the last); None for an unknown department."""
    if department not in registry.departments:
        return None
    cards = scorecards_between(conn, month, month, department)
    with conn.cursor(row_factory=dict_row) as cur:
        count = cur.execute("select count(*) as n from ops.loads where department = %s",
                            (department,)).fetchone()["n"]
        pages = max(1, -(-count // per_page))
        page = min(max(1, page), pages)
        rows = cur.execute(_BATCH + " order by l.received_at desc, l.load_id limit %(limit)s offset %(offset)s",
                           {"department": department, "limit": per_page,
                            "offset": (page - 1) * per_page}).fetchall()
    return DepartmentDetail(department, _department_name(registry, department), month, cards,
                            _batches(registry, rows), count, page, pages)


def batch_detail(conn: psycopg.Connection, registry: Registry, department: str, load_id: str,
                 limit: int = ROWS_SHOWN) -> BatchDetail | None:
    """A batch of ``department`` and its quarantined rows, masked; None when it is not that department's."""
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(_BATCH + " and l.load_id = %(load_id)s",
                            {"department": department, "load_id": load_id}).fetchone()
        if found is None:
            return None
        total = cur.execute("select count(*) as n from quarantine.rows where load_id = %s",
                            (load_id,)).fetchone()["n"]
        rows = cur.execute("select row_no, violations, reasons from quarantine.rows where load_id = %s"
                           " order by row_no limit %s", (load_id, limit)).fetchall()
        results = cur.execute("select field, rule, expectation, success, unexpected_count from ops.validation_results"
                              " where load_id = %s order by success, field, rule", (load_id,)).fetchall()
    quarantined = [QuarantinedRow(row["row_no"],
                                  [{"header": mask_text(v.get("header")), "value": mask_text(v.get("value")),
                                    "reason": mask_text(v.get("reason"))} for v in row["violations"]],
                                  mask_text(row["reasons"])) for row in rows]
    source = registry.sources.get(found["source_id"])
    headers = source.header_for_field if source is not None else {}
    checks = [QualityCheck(headers.get(r["field"], r["field"] or "（整批）"), r["rule"],
                           RULES[r["rule"]].label if r["rule"] in RULES else r["rule"], r["expectation"],
                           r["success"], r["unexpected_count"]) for r in results]
    return BatchDetail(_batches(registry, [found])[0], _department_name(registry, department), quarantined, total,
                       checks)


@dataclass(frozen=True)
class ArchivedReport:
    """A scheduled report of one period as archived (``ops.analysis_reports``, huiju.reports.delivery)."""

    report_id: str
    period: str
    title: str
    as_of: datetime
    generated_at: datetime
    workbook: str  # path under var/
    charts: tuple[str, ...]  # paths under var/

    @property
    def workbook_name(self) -> str:
        """The workbook's file name, as a download saves it."""
        return self.workbook.rsplit("/", 1)[-1]


_ARCHIVED = ("select report_id, period, title, as_of, generated_at, workbook, charts from ops.analysis_reports")


def archived_reports(conn: psycopg.Connection, limit: int = REPORTS_SHOWN) -> list[ArchivedReport]:
    """The archived reports, the latest period first (分析报告 page)."""
    rows = conn.execute(_ARCHIVED + " order by period desc, report_id limit %s", (limit,)).fetchall()
    return [ArchivedReport(*row[:6], tuple(row[6])) for row in rows]


def archived_report(conn: psycopg.Connection, report_id: str, period: str) -> ArchivedReport | None:
    """One report's period as archived, or None."""
    row = conn.execute(_ARCHIVED + " where report_id = %s and period = %s", (report_id, period)).fetchone()
    return None if row is None else ArchivedReport(*row[:6], tuple(row[6]))
