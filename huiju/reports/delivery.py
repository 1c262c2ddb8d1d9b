"""A report's run: compute it as of its period, render the workbook and charts into the archive, record
them in the index and queue the e-mail — exactly once per report and period.

The archive is ``var/reports/<report>/<period>/`` (0600 files in 0700 folders, huiju.private_files),
indexed in ``ops.analysis_reports`` (migration 230) and in ``var/reports/index.json``. The first run of
a period fixes the instant its numbers are read as of — the period's close, or the run's own time for a
period still running — and every later run of that period reuses it, so its numbers never move. The
e-mail (its charts in its body, the workbook attached) is an ``ops.notices`` row whose ``dedupe_key`` is
``report:<report>:<period>``, queued in the transaction that writes the index row: a rerun (or a second
scheduler) adds no second e-mail, and the notices outbox delivers it once (``huiju_notices``, or the reports
DAG's notify task).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from huiju.monitoring.scorecards import ranking
from huiju.notices import Recipient, leader_recipients, queue_notice, steward_recipients
from huiju.private_files import write_private
from huiju.registry import Registry
from huiju.reports.charts import draw_chart, warm_up_renderer
from huiju.reports.config import Report
from huiju.reports.statistics import BEIJING, Period, TableResult, report_tables
from huiju.reports.workbook import WorkbookContent, highlight_values, write_workbook
from huiju.settings import get_settings

log = logging.getLogger(__name__)

REPORTS_FOLDER = "reports"


@dataclass(frozen=True)
class ReportRun:
    """What one run of a report produced."""

    report_id: str
    period: str
    as_of: datetime
    workbook: Path
    charts: tuple[Path, ...]
    notice_id: int | None  # None: the e-mail was queued by an earlier run (or had no recipient)
    tables: tuple[TableResult, ...]


def archive_dir(report_id: str, period: str) -> Path:
    """Where a report's period is archived."""
    return get_settings().var / REPORTS_FOLDER / report_id / period


def recipients(report: Report, registry: Registry) -> list[Recipient]:
    """The report's configured recipients (e-mail addresses, stewards, departments' leaders)."""
    out = [Recipient("email", address) for address in report.recipients.emails]
    if report.recipients.stewards:
        out += [r for r in steward_recipients() if r.channel == "email"]
    if report.recipients.department_leaders:
        for code in sorted(registry.departments):
            out += [r for r in leader_recipients(registry, code) if r.channel == "email"]
    return out


def _as_of(conn: psycopg.Connection, report: Report, period: Period, now: datetime) -> datetime:
    """The instant this period's numbers are read as of: the first run's, else the period's close (or now)."""
    row = conn.execute("select as_of from ops.analysis_reports where report_id = %s and period = %s",
                       (report.id, period.key)).fetchone()
    if row is not None:
        return row[0]
    return min(period.closes_at, now)


def _mail_body(report: Report, period: Period, as_of: datetime, content: WorkbookContent) -> str:
    lines = [f"{report.title}（{period.label}）", "",
             f"数据截至 {as_of.astimezone(BEIJING):%Y-%m-%d %H:%M}（北京时间）。主要指标："]
    for label, value in highlight_values(content):
        if value is None:
            shown = "—"
        elif isinstance(value, float) and not value.is_integer() and value < 1.0 and "率" in label:
            shown = f"{value:.1%}"
        else:
            shown = f"{value:,.2f}" if isinstance(value, float) and not value.is_integer() else f"{int(value):,}"
        lines.append(f"  {label}：{shown}")
    lines += ["", "图表见下；各分表见附件工作簿（首页为摘要）。本邮件由汇聚平台定时分析自动发送。"]
    return "\n".join(lines)


def write_index(conn: psycopg.Connection) -> Path:
    """``var/reports/index.json``: every archived report and period, newest first (0600)."""
    rows = conn.execute(
        "select report_id, period, title, as_of, generated_at, workbook, workbook_sha256, charts"
        " from ops.analysis_reports order by generated_at desc, report_id, period").fetchall()
    entries = [{"report": r[0], "period": r[1], "title": r[2], "as_of": r[3].isoformat(),
                "generated_at": r[4].isoformat(), "workbook": r[5], "sha256": r[6], "charts": list(r[7])}
               for r in rows]
    return write_private(get_settings().var / REPORTS_FOLDER / "index.json",
                         json.dumps(entries, ensure_ascii=False, indent=2) + "\n")


def run_report(conn: psycopg.Connection, registry: Registry, report: Report, period: Period, *,
               now: datetime | None = None) -> ReportRun:
    """Compute, render, archive and announce ``report`` for ``period`` (idempotent per report and period).

    ``conn`` connects as the transformation component (it reads the analysis layer and writes ``ops``).
    """
    now = now or datetime.now(UTC)
    warm_up_renderer()  # matplotlib loads while the warehouse computes the tables
    with conn.transaction():
        # One run per report and period at a time: the second waits, then finds the first's as_of and notice.
        conn.execute("select pg_advisory_xact_lock(hashtext('huiju.report'), hashtext(%s))",
                     (f"{report.id}:{period.key}",))
        as_of = _as_of(conn, report, period, now)
        names = {code: dept.name for code, dept in registry.departments.items()}
        tables = report_tables(conn, report, period, as_of, names)
        ranked = None
        if report.scorecards:
            ranked = [(entry.rank, names.get(entry.card.department, entry.card.department), entry)
                      for entry in ranking(conn, f"{period.month:%Y-%m}")]
        content = WorkbookContent(report, period, as_of, tables, ranked)
        folder = archive_dir(report.id, period.key)
        workbook = write_workbook(content, folder / f"{report.id}-{period.key}.xlsx")
        charts = tuple(draw_chart(result, folder / "charts" / f"{result.table.id}.png")
                       for result in tables if result.table.chart is not None and result.rows)
        var = get_settings().var
        digest = hashlib.sha256(workbook.read_bytes()).hexdigest()
        conn.execute(
            "insert into ops.analysis_reports (report_id, period, title, as_of, workbook, workbook_sha256, charts)"
            " values (%s, %s, %s, %s, %s, %s, %s) on conflict (report_id, period) do update set"
            " generated_at = now(), workbook = excluded.workbook, workbook_sha256 = excluded.workbook_sha256,"
            " charts = excluded.charts",
            (report.id, period.key, report.title, as_of, str(workbook.relative_to(var)), digest,
             [str(c.relative_to(var)) for c in charts]))
        notice_id = queue_notice(
            conn, dedupe_key=f"report:{report.id}:{period.key}", kind="analysis_report",
            subject=f"【{report.title}】{period.label}", body=_mail_body(report, period, as_of, content),
            recipients=recipients(report, registry), attachment=workbook, inline_images=charts)
        if notice_id is not None:
            conn.execute("update ops.analysis_reports set notice_id = %s where report_id = %s and period = %s",
                         (notice_id, report.id, period.key))
        write_index(conn)
    log.info("report %s for %s: %s (%d charts)", report.id, period.key, workbook, len(charts))
    return ReportRun(report.id, period.key, as_of, workbook, charts, notice_id, tuple(tables))


def run_configured(report_id: str, period_key: str | None = None, *, registry: Registry | None = None,
                   url: str | None = None, now: datetime | None = None) -> ReportRun:
    """Run ``config/reports/<report_id>.yaml`` for ``period_key`` (default: the last period that has closed).

    What the ``huiju report`` command and the reports DAG call; connects as the transformation component.
    """
    from huiju.registry import load_registry  # why: callers with a registry in hand skip the reload
    from huiju.reports.config import load_reports
    from huiju.reports.statistics import parse_period, previous_period
    from huiju.warehouse import connect

    warm_up_renderer()  # matplotlib loads while the configuration is read and the warehouse computes
    registry = registry or load_registry()
    report = load_reports()[report_id]
    now = now or datetime.now(UTC)
    period = parse_period(report.period, period_key) if period_key else previous_period(report.period, now)
    with connect(url, role="transformation") as conn:
        return run_report(conn, registry, report, period, now=now)
