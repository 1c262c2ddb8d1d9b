"""The submission ledger (``ops.submissions``): per department × source × period, what was owed and what came.

Derived from ``ops.loads`` (batches, rows received / accepted / quarantined / held, resubmissions)
and ``ops.feedback`` (problem rows sent back), for the periods :mod:`huiju.monitoring.obligations`
says are owed. :func:`refresh` rebuilds given sources' rows — the ingest path calls it for its
source after validation and feedback (:func:`record_source`) — and :func:`backfill` rebuilds every
source's; both are the same set-based computation, so a refresh and a backfill for the same day
give the same rows.

Status of a period (as of a day):

* ``on_time`` / ``late``: a usable batch (not held, not failed) arrived by / after ``late_after``
  (on time when the deadline is unknown: the calendar gap is not the department's fault);
* ``held``: only batches held over tolerance arrived;
* ``pending``: nothing yet, and ``late_after`` has not passed;
* ``missing``: nothing, and ``late_after`` has passed;
* ``unknown``: nothing, and the deadline cannot be known (a year no calendar holds).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

import psycopg

from huiju.monitoring.obligations import Obligations, obligations
from huiju.monitoring.scorecards import refresh_months
from huiju.registry import Registry
from huiju.settings import TIMEZONE
from huiju.warehouse import connect
from huiju.workdays import WorkCalendar

log = logging.getLogger(__name__)

COLUMNS = ("source_id", "period", "department", "dataset", "period_kind", "continuous", "period_start", "period_end",
           "receive_from", "receive_to", "due_date", "late_after")

# Each batch's original (resubmission chains followed back), the day the original arrived, and the
# period whose receive window holds that day; then per period the aggregates and the status.
_REBUILD = """
with recursive chain as (
    select load_id, load_id as root_id from ops.loads
     where resubmission_of is null and source_id = any(%(sources)s)
    union all
    select l.load_id, c.root_id from ops.loads l join chain c on l.resubmission_of = c.load_id
),
feedback as (
    select load_id, max(rows) as rows, min(delivered_at) as sent_at from ops.feedback
     where load_id in (select load_id from chain) group by load_id
),
corrections as (
    select resubmission_of as load_id, sum(coalesce(rows_accepted, 0)) as accepted, min(received_at) as first_at
      from ops.loads where resubmission_of in (select load_id from chain) and status in ('validated', 'published')
     group by resubmission_of
),
batches as (
    select l.source_id, l.status, l.received_at, l.rows_received, l.rows_accepted, l.rows_quarantined,
           f.rows as feedback_rows, f.sent_at as feedback_sent_at, c.first_at as resubmitted_at,
           least(coalesce(f.rows, 0), coalesce(c.accepted, 0)) as rows_corrected,
           (root.received_at at time zone 'Asia/Shanghai')::date as counts_on
      from ops.loads l
      join chain using (load_id)
      join ops.loads root on root.load_id = chain.root_id
      left join feedback f on f.load_id = l.load_id
      left join corrections c on c.load_id = l.load_id
     where l.status <> 'failed' and (root.received_at at time zone 'Asia/Shanghai')::date >= %(from)s
),
attributed as (
    select d.period, b.* from batches b
      cross join lateral (select period, receive_to from monitor_due d
                           where d.source_id = b.source_id and d.receive_from <= b.counts_on
                           order by d.receive_from desc limit 1) d
     where b.counts_on <= d.receive_to
),
per_period as (
    select source_id, period, count(*) as batches, min(received_at) as first_received_at,
           max(received_at) as last_received_at,
           min(received_at) filter (where status <> 'held') as delivered_at,
           sum(coalesce(rows_received, 0)) as rows_received,
           sum(coalesce(rows_accepted, 0)) filter (where status in ('validated', 'published')) as rows_accepted,
           sum(coalesce(rows_quarantined, 0)) as rows_quarantined,
           sum(coalesce(rows_received, 0)) filter (where status = 'held') as rows_held,
           sum(coalesce(feedback_rows, 0)) as feedback_rows, min(feedback_sent_at) as feedback_sent_at,
           min(resubmitted_at) as resubmitted_at, sum(rows_corrected) as rows_corrected
      from attributed group by source_id, period
)
insert into ops.submissions (source_id, period, department, dataset, period_kind, continuous, period_start,
                             period_end, receive_from, receive_to, due_date, late_after, as_of, status, batches,
                             first_received_at, last_received_at, delivered_at, rows_received, rows_accepted,
                             rows_quarantined, rows_held, feedback_rows, feedback_sent_at, resubmitted_at,
                             rows_corrected)
select d.source_id, d.period, d.department, d.dataset, d.period_kind, d.continuous, d.period_start, d.period_end,
       d.receive_from, d.receive_to, d.due_date, d.late_after, %(as_of)s,
       case when p.delivered_at is not null then
                case when d.late_after is null
                       or (p.delivered_at at time zone 'Asia/Shanghai')::date <= d.late_after
                     then 'on_time' else 'late' end
            when p.batches > 0 then 'held'
            when d.late_after is null then 'unknown'
            when d.late_after >= %(as_of)s then 'pending'
            else 'missing' end,
       coalesce(p.batches, 0), p.first_received_at, p.last_received_at, p.delivered_at,
       coalesce(p.rows_received, 0), coalesce(p.rows_accepted, 0), coalesce(p.rows_quarantined, 0),
       coalesce(p.rows_held, 0), coalesce(p.feedback_rows, 0), p.feedback_sent_at, p.resubmitted_at,
       coalesce(p.rows_corrected, 0)
  from monitor_due d left join per_period p using (source_id, period)
"""


def today() -> date:
    """Today in Asia/Shanghai, the day the platform's deadlines are counted in."""
    return datetime.now(ZoneInfo(TIMEZONE)).date()


def first_deliveries(conn: psycopg.Connection, source_ids: Iterable[str] | None = None) -> dict[str, date]:
    """Each source's first batch (not failed), as an Asia/Shanghai date: where a source without ``since`` starts."""
    rows = conn.execute(
        "select source_id, min((received_at at time zone 'Asia/Shanghai')::date) from ops.loads"
        " where status <> 'failed' and (%(all)s or source_id = any(%(ids)s)) group by source_id",
        {"all": source_ids is None, "ids": list(source_ids or [])}).fetchall()
    return dict(rows)


def refresh(conn: psycopg.Connection, registry: Registry, source_ids: Iterable[str] | None = None,
            as_of: date | None = None, cal: WorkCalendar | None = None, *,
            recent_days: int | None = None) -> Obligations:
    """Rebuild the ledger rows of ``source_ids`` (default: every source) as of ``as_of`` (default: today).

    With ``recent_days``, only the periods that can still be pending or at most that many days late
    are rebuilt (the hourly run; see :func:`huiju.monitoring.obligations.recent_since`); older rows
    stay as the last full rebuild left them. In the caller's transaction, serialised with other
    refreshes by an advisory lock. A full rebuild of every source (:func:`backfill`) also drops rows
    of sources no longer in the registry. Returns the obligations computed (with the calendar gaps met).
    """
    as_of = as_of or today()
    ids = sorted(registry.sources if source_ids is None else set(source_ids) & set(registry.sources))
    owed = obligations(registry, as_of, first_delivery=first_deliveries(conn, ids), source_ids=ids, cal=cal,
                       recent_days=recent_days)
    with conn.transaction():  # the temporary table lives until the end of the transaction
        conn.execute("select pg_advisory_xact_lock(hashtext('huiju.monitoring.ledger'))")
        conn.execute("create temporary table if not exists monitor_due (source_id text, period text, department text,"
                     " dataset text, period_kind text, continuous boolean, period_start date, period_end date,"
                     " receive_from date, receive_to date, due_date date, late_after date) on commit drop")
        conn.execute("truncate monitor_due")
        with conn.cursor() as cur, cur.copy(f"copy monitor_due ({', '.join(COLUMNS)}) from stdin") as copy:
            for due in owed.dues:
                rule = due.rule
                copy.write_row((rule.source_id, due.period.key, rule.department, rule.dataset, rule.period,
                                rule.continuous, due.period.start, due.period.end, due.receive_from, due.receive_to,
                                due.due_date, due.late_after))
        conn.execute("create index if not exists monitor_due_window on monitor_due (source_id, receive_from)")
        conn.execute("analyze monitor_due")
        whole = recent_days is None and source_ids is None
        if whole:
            conn.execute("delete from ops.submissions")
        else:
            # The months of the rows replaced (before and after: a source may have changed department).
            conn.execute("create temporary table if not exists monitor_months (department text, month text)"
                         " on commit drop")
            conn.execute("truncate monitor_months")
            gone = ("delete from ops.submissions s using monitor_due d"
                    " where s.source_id = d.source_id and s.period = d.period" if recent_days is not None
                    else "delete from ops.submissions s where s.source_id = any(%(sources)s)")
            conn.execute(f"with gone as ({gone} returning s.department, s.period_end)"
                         " insert into monitor_months select department, to_char(period_end, 'YYYY-MM') from gone"
                         " union select department, to_char(period_end, 'YYYY-MM') from monitor_due",
                         {"sources": ids})
        oldest = min((due.receive_from for due in owed.dues), default=as_of)
        conn.execute(_REBUILD, {"sources": ids, "as_of": as_of, "from": oldest})
        refresh_months(conn, None if whole else "monitor_months")
    log.info("submission ledger: %d period(s) of %d source(s) as of %s", len(owed.dues), len(ids), as_of)
    if owed.calendar_gaps:
        log.warning("working-day calendar has no data for %s: those deadlines are not computed",
                    ", ".join(str(y) for y in sorted(owed.calendar_gaps)))
    return owed


def last_full_rebuild(conn: psycopg.Connection) -> date | None:
    """The day the oldest ledger row was derived for: when the whole ledger was last rebuilt."""
    row = conn.execute("select min(as_of) from ops.submissions").fetchone()
    return row[0] if row else None


def backfill(conn: psycopg.Connection, registry: Registry, as_of: date | None = None,
             cal: WorkCalendar | None = None) -> Obligations:
    """Rebuild the whole ledger from ``ops.loads`` and ``ops.feedback`` (every source, every period owed)."""
    return refresh(conn, registry, None, as_of, cal)


def record_source(registry: Registry, source_id: str) -> None:
    """After an ingest step: bring the source's ledger rows up to date (its own transaction).

    A failure is logged, never raised: monitoring must not stop data from being published, and the
    ``huiju_monitor`` DAG rebuilds the ledger anyway.
    """
    try:
        with connect(role="validation") as conn, conn.transaction():
            refresh(conn, registry, [source_id])
    except Exception:  # logged; the ingest goes on
        log.exception("submission ledger: refreshing %s failed; huiju_monitor rebuilds it", source_id)
