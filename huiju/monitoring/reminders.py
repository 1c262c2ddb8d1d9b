"""催报: the reminder ladder per obligation, and the stewards' weekly digest, queued in the notices outbox.

For each period a source owes (a row of ``ops.submissions``) with no usable batch as of the day:

1. ``remind`` — a reminder to the department's contacts, from ``remind_before_working_days``
   working days before the deadline until the deadline itself;
2. ``overdue`` — a 催报 notice once the period is late (after ``late_after``: the deadline plus grace);
3. ``escalate`` — the department's leader (``leader:`` in its YAML), the contacts and the stewards,
   once the period has been late ``escalate_after_working_days`` working days;

and ``digest`` — once a week (ISO week), every overdue obligation, by department, to the stewards.

Each notice is queued with :func:`huiju.notices.queue_notices` (the outbox's set-based
:func:`~huiju.notices.queue_notice`) under the dedupe key
``monitor:<level>:<department>:<source>:<period>`` (the digest: ``monitor:digest:*:*:<week>``), so
exactly one notice exists per (department, source, period, level) whatever the scheduler does:
a run repeated, retried, backfilled for an earlier day or killed mid-way (all notices of a run are
queued in one transaction). Which notices a day calls for is decided from the ledger as of that
day — batches received later do not count — so a backfill for a past day asks for that day's.

Periods are announced only for ``LOOKBACK_DAYS`` after they became late (an outage of the monitor
must not end in a flood of stale notices); a continuous source's silence is announced once per
silence (the first silent day), not once per day; a deadline the calendar cannot give is not
announced at all (the run reports the calendar gap instead).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import psycopg
from psycopg.rows import dict_row

from huiju.monitoring.obligations import Period, rule_of
from huiju.notices import (
    NoticeDraft,
    Recipient,
    department_recipients,
    leader_recipients,
    queue_notices,
    steward_recipients,
)
from huiju.registry import Registry
from huiju.workdays import WorkCalendar, work_calendar

log = logging.getLogger(__name__)

LEVELS = ("remind", "overdue", "escalate")
#: Each level as departments and stewards read it.
LEVEL_LABELS = {"remind": "报送提醒", "overdue": "催报", "escalate": "督办（已告知分管领导）"}
LOOKBACK_DAYS = 30
SIGNATURE = "（本邮件由汇聚平台自动发送）"

# Obligations of the day, in one query: every period ended before the day with no usable batch by
# then, whose deadline is near or passed, with whether the period before it was also unanswered
# (a continuous source's silence is announced once).
_OPEN = """
select * from (
    select s.*,
           (s.first_received_at at time zone 'Asia/Shanghai')::date <= %(as_of)s as held_by_then,
           coalesce(lag(s.unanswered) over (partition by s.source_id order by s.period_start), false)
               as previous_unanswered
      from (select source_id, period, department, period_start, period_end, due_date, late_after, batches,
                   rows_held, first_received_at,
                   (delivered_at is null or (delivered_at at time zone 'Asia/Shanghai')::date > %(as_of)s)
                   and late_after is not null as unanswered
              from ops.submissions
             where period_end < %(as_of)s and period_end >= %(as_of)s::date - %(window)s
               and (%(all)s or source_id = any(%(sources)s))) s
) o
 where unanswered and (due_date between %(as_of)s and %(as_of)s::date + %(ahead)s
                       or late_after between %(as_of)s::date - %(lookback)s and %(as_of)s::date - 1)
"""


@dataclass(frozen=True)
class Reminder:
    """One notice the day calls for."""

    level: str  # remind | overdue | escalate
    department: str
    source_id: str
    period: str
    period_label: str
    due_date: date
    late_after: date
    held: bool  # only batches held over tolerance arrived
    rows_held: int
    working_days_late: int

    @property
    def dedupe_key(self) -> str:
        """``monitor:<level>:<department>:<source>:<period>``: one notice per key, ever."""
        return dedupe_key(self.level, self.department, self.source_id, self.period)


@dataclass
class ReminderReport:
    """What one :func:`queue_reminders` run did."""

    due: list[Reminder] = field(default_factory=list)  # every notice the day calls for
    queued: list[str] = field(default_factory=list)  # dedupe keys queued now (the others existed already)


def dedupe_key(level: str, department: str, source_id: str, period: str) -> str:
    """The outbox key of a monitoring notice."""
    return f"monitor:{level}:{department}:{source_id}:{period}"


def digest_key(as_of: date) -> str:
    """The stewards' digest of ``as_of``'s ISO week."""
    iso = as_of.isocalendar()
    return dedupe_key("digest", "*", "*", f"{iso.year}-W{iso.week:02d}")


def due_reminders(conn: psycopg.Connection, registry: Registry, as_of: date, *, cal: WorkCalendar | None = None,
                  source_ids: list[str] | None = None) -> list[Reminder]:
    """Every notice of the ladder that ``as_of`` calls for (queued or not), from the ledger in one query."""
    cal = cal or work_calendar()
    rules = {sid: rule_of(src) for sid, src in registry.sources.items()}
    window = LOOKBACK_DAYS + 120  # the longest deadline after a period's end, and the lookback
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_OPEN, {"as_of": as_of, "window": window, "all": source_ids is None,
                                   "sources": source_ids or [], "ahead": 31, "lookback": LOOKBACK_DAYS}).fetchall()
    out: list[Reminder] = []
    for row in rows:
        rule = rules.get(row["source_id"])
        if rule is None:
            continue
        due_date, late_after = row["due_date"], row["late_after"]
        held = bool(row["batches"]) and bool(row["held_by_then"])
        levels: list[tuple[str, int]] = []
        if as_of <= due_date and not rule.continuous:
            if cal.working_days_between(as_of, due_date) <= rule.remind_before_working_days:
                levels.append(("remind", 0))
        elif late_after < as_of <= late_after + timedelta(days=LOOKBACK_DAYS):
            if rule.continuous and row["previous_unanswered"]:
                continue  # the silence was announced on its first day
            late = cal.working_days_between(late_after, as_of)
            levels.append(("overdue", late))
            if late >= rule.escalate_after_working_days:
                levels.append(("escalate", late))
        for level, late in levels:
            out.append(Reminder(level, row["department"], row["source_id"], row["period"],
                                Period(row["period"], row["period_start"], row["period_end"]).label(),
                                due_date, late_after, held, int(row["rows_held"]) if held else 0, late))
    return out


def _text(registry: Registry, reminder: Reminder) -> tuple[str, str, list[Recipient]]:
    """Subject, body and recipients of one notice, in Chinese."""
    source = registry.sources[reminder.source_id]
    dept = registry.departments[reminder.department]
    dataset = registry.dataset_of(source).title
    what = f"《{source.title}》（数据集：{dataset}）{reminder.period_label}的数据"
    rule = rule_of(source)
    continuous = rule is not None and rule.continuous
    if reminder.held:
        problem = (f"贵单位报送的批次因问题数据超过允许比例已暂缓入库（{reminder.rows_held}行未入库），"
                   "尚无可用数据。请按问题数据反馈表修正后整批重新报送。")
    elif continuous:
        problem = f"平台自{reminder.period_label}起未收到贵单位系统推送的数据，请检查接口或前置库是否正常。"
    else:
        problem = "平台尚未收到该期数据。"
    deadline = f"报送截止日期：{reminder.due_date}" + (
        f"（宽限至{reminder.late_after}）" if reminder.late_after != reminder.due_date else "")
    if reminder.level == "remind":
        subject = f"【报送提醒】{dept.name}{what}请于{reminder.due_date}前报送"
        body = (f"{dept.name}：\n\n{what}应于{reminder.due_date}（含）前报送，{problem}请按时报送。\n\n"
                f"{deadline}\n{SIGNATURE}")
        return subject, body, department_recipients(registry, reminder.department)
    if reminder.level == "overdue":
        subject = f"【催报】{dept.name}{what}已逾期"
        body = (f"{dept.name}：\n\n{what}已超过报送期限，{problem}请尽快报送。\n\n{deadline}\n"
                f"已逾期：{reminder.working_days_late}个工作日\n{SIGNATURE}")
        return subject, body, department_recipients(registry, reminder.department)
    leader = dept.leader
    greeting = f"{leader.name}{leader.title}" if leader is not None else f"{dept.name}负责同志"
    subject = f"【催报·请督办】{dept.name}{what}已逾期{reminder.working_days_late}个工作日"
    body = (f"{greeting}：\n\n{dept.name}{what}已逾期{reminder.working_days_late}个工作日，{problem}"
            f"此前已向贵单位数据联系人发送提醒和催报通知。请督促尽快报送。\n\n{deadline}\n{SIGNATURE}")
    return subject, body, [*leader_recipients(registry, reminder.department),
                           *department_recipients(registry, reminder.department), *steward_recipients()]


def _digest(registry: Registry, as_of: date, reminders: list[Reminder], warnings: list[str]) -> tuple[str, str]:
    overdue = [r for r in reminders if r.level == "overdue"]
    by_department: dict[str, list[Reminder]] = defaultdict(list)
    for reminder in overdue:
        by_department[reminder.department].append(reminder)
    iso = as_of.isocalendar()
    lines = [f"数据管理员：\n\n截至{as_of}，逾期未报（或暂缓入库）的数据共{len(overdue)}项"
             f"，涉及{len(by_department)}个单位。\n"]
    for code in sorted(by_department):
        dept = registry.departments.get(code)
        lines.append(f"{dept.name if dept else code}：")
        for r in sorted(by_department[code], key=lambda r: (r.source_id, r.period)):
            title = registry.sources[r.source_id].title
            state = "暂缓入库" if r.held else "未报送"
            lines.append(f"  · 《{title}》{r.period_label}：{state}，截止{r.due_date}，"
                         f"已逾期{r.working_days_late}个工作日")
    if not overdue:
        lines.append("本周没有逾期未报的数据。")
    lines += ["", *warnings, SIGNATURE]
    return f"【催报周报】{iso.year}年第{iso.week}周：逾期未报{len(overdue)}项", "\n".join(lines)


def queue_reminders(conn: psycopg.Connection, registry: Registry, as_of: date, *, cal: WorkCalendar | None = None,
                    warnings: list[str] | None = None, source_ids: list[str] | None = None) -> ReminderReport:
    """Queue every notice ``as_of`` calls for that is not in the outbox yet, and the week's digest.

    One transaction (nested in the caller's if there is one): a run killed mid-way queues nothing,
    and the next run queues it all. ``warnings`` (the calendar's, in Chinese) go into the digest.
    """
    report = ReminderReport()
    with conn.transaction():
        report.due = due_reminders(conn, registry, as_of, cal=cal, source_ids=source_ids)
        keys = [r.dedupe_key for r in report.due] + [digest_key(as_of)]
        existing = {row[0] for row in conn.execute("select dedupe_key from ops.notices where dedupe_key = any(%s)",
                                                   (keys,))}
        drafts = []
        for reminder in report.due:
            if reminder.dedupe_key in existing:
                continue
            subject, body, recipients = _text(registry, reminder)
            # One topic per obligation and period: a later level supersedes an earlier one still undelivered.
            drafts.append(NoticeDraft(reminder.dedupe_key, f"monitor_{reminder.level}", subject, body,
                                      tuple(recipients), reminder.department, reminder.source_id,
                                      topic=f"monitor:{reminder.department}:{reminder.source_id}:{reminder.period}",
                                      rank=LEVELS.index(reminder.level) + 1))
        if digest_key(as_of) not in existing and source_ids is None:
            subject, body = _digest(registry, as_of, report.due, warnings or [])
            drafts.append(NoticeDraft(digest_key(as_of), "monitor_digest", subject, body, tuple(steward_recipients())))
        report.queued = queue_notices(conn, drafts)
    if report.queued:
        log.info("催报: %d notice(s) queued as of %s", len(report.queued), as_of)
    return report
