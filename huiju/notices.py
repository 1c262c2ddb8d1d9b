"""Notices to departments and stewards: one outbox (``ops.notices``) and its deliveries, for the whole platform.

Producers queue a notice with :func:`queue_notice` in the same transaction as the fact it
announces (a batch held, a feedback workbook written, a problem on an FTP/SFTP drop). The
``dedupe_key`` is unique, so a producer run twice announces a problem once. Subject and body
are Chinese text for people; every ID or mobile number in them is masked before it is stored.

Each notice fans out into one ``ops.notice_deliveries`` row per channel and recipient:
``email`` to an address, ``dingtalk`` / ``wecom`` to the Airflow Connection of a DingTalk / WeCom
group robot; a department chooses its channels in its YAML (``channels:``).
:func:`deliver_pending` sends the pending ones through *sender* callables (one per channel;
the Airflow side builds them from the smtp and dingding providers' hooks and the plugin's WeCom
hook, ``huiju_airflow.robots``), each in its own
transaction holding the delivery's row lock: parallel deliverers never pick the same row, a
failure is retried later (``attempts``, ``last_error``, ``next_attempt_at``), and a delivery
once recorded as delivered is never sent again.

A channel that is down is neither hammered nor flooded when it comes back (:class:`Breaker`,
``ops.notice_circuits``): after a few consecutive failures its circuit (the mail relay, or one
robot) opens and nothing is tried through it until a cool-down has passed, then one probe; while
closed, at most ``per_minute`` deliveries a minute go through it. Notices of one ladder share a
``topic`` and have a ``rank``: a delivery still pending when a higher-ranked notice of its topic
went to the same recipient is superseded (``superseded_by``), never sent late.

Who hears about what:

* a batch held over tolerance → the department's contacts and the stewards (:func:`queue_held_notice`);
* a feedback workbook → the department's contacts, with a link to the batch's page on the departments'
  portal, where the logged-in department downloads it (:func:`queue_feedback_notice`). The workbook
  holds the rows the department sent (IDs, mobiles): it is never attached to a plain e-mail;
* a problem on a file drop (``ops.remote_file_events`` with ``notified_at`` null) → the
  department's contacts (:func:`queue_remote_file_notices`, which sets ``notified_at`` in the
  same transaction).

Stewards are ``HUIJU_STEWARD_EMAILS`` (comma-separated; default ``huiju-stewards@example.gov.cn``)
and, optionally, the robot Connections ``HUIJU_STEWARD_DINGTALK`` and ``HUIJU_STEWARD_WECOM``.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from huiju.masking import mask_text
from huiju.registry import ROBOT_CHANNELS, Department, Registry
from huiju.rules import problem_name
from huiju.settings import get_settings, portal_batch_url

log = logging.getLogger(__name__)

CHANNELS = ("email", "dingtalk", "wecom")
DEFAULT_STEWARD_EMAILS = "huiju-stewards@example.gov.cn"
REMOTE_FILE_PROBLEMS = {
    "stale_incomplete": "文件上传未完成",
    "marker_mismatch": "完成标记与文件不符",
    "unsafe_name": "文件名不安全",
    "undecodable_name": "文件名无法识别",
    "orphan_marker": "只有完成标记没有数据文件",
}


@dataclass(frozen=True)
class Recipient:
    """Where one copy of a notice goes: ``email`` to an address, ``dingtalk``/``wecom`` to a robot's Connection."""

    channel: str
    address: str


@dataclass(frozen=True)
class Outgoing:
    """One delivery handed to a sender: the notice's text, masked, and whom it is for."""

    notice_id: int
    dedupe_key: str
    kind: str
    department: str | None
    channel: str
    recipient: str
    subject: str
    body: str
    attachment: Path | None  # absolute path of the file to attach, if any
    inline_images: tuple[Path, ...] = ()  # absolute paths of PNGs shown in an e-mail's body (cid:<file name>)

    @property
    def message_id(self) -> str:
        """A stable e-mail Message-ID: a mail system that sees it twice can tell it is the same notice."""
        digest = hashlib.sha256(f"{self.dedupe_key}|{self.recipient}".encode()).hexdigest()[:16]
        return f"<notice-{self.notice_id}-{digest}@huiju.local>"


Sender = Callable[[Outgoing], None]


@dataclass
class DeliveryReport:
    """What one :func:`deliver_pending` run did."""

    delivered: int = 0
    failed: int = 0  # attempts that raised (retried later unless out of attempts)
    errors: list[str] = field(default_factory=list)  # masked, one per failed attempt
    superseded: int = 0  # pending deliveries a higher-ranked notice of their topic replaced
    opened: list[str] = field(default_factory=list)  # circuits this run opened (or opened again)


@dataclass(frozen=True)
class Breaker:
    """How a failing channel is spared and how fast a backlog drains (see the module docstring)."""

    threshold: int = 3  # consecutive failures that open a circuit
    cooldown: timedelta = timedelta(minutes=5)  # the first wait while open; doubled per failed probe
    max_cooldown: timedelta = timedelta(hours=1)
    # Deliveries (attempts) a minute through one circuit; robots accept 20 messages a minute.
    per_minute: Mapping[str, int] = field(default_factory=lambda: {"email": 120, "dingtalk": 15, "wecom": 15})


def circuit_of(channel: str, recipient: str) -> str:
    """What one outage takes down: the mail relay for every e-mail, one robot for a robot channel."""
    return channel if channel == "email" else f"{channel}:{recipient}"


_CIRCUIT_SQL = "case when d.channel = 'email' then 'email' else d.channel || ':' || d.recipient end"


def steward_recipients() -> list[Recipient]:
    """The data stewards (数据管理员) who hear about held batches and anomalies."""
    emails = os.environ.get("HUIJU_STEWARD_EMAILS", DEFAULT_STEWARD_EMAILS)
    out = [Recipient("email", e.strip()) for e in emails.split(",") if e.strip()]
    for channel in ROBOT_CHANNELS:
        robot = os.environ.get(f"HUIJU_STEWARD_{channel.upper()}")
        if robot:
            out.append(Recipient(channel, robot))
    return out


def channel_recipients(department: Department, audience: Literal["contacts", "leader"],
                       emails: Iterable[str | None]) -> list[Recipient]:
    """``emails`` and the department's robots, through the channels it wants for ``audience`` (its YAML)."""
    channels = department.channels_for(audience)
    out = [Recipient("email", e) for e in emails if e] if "email" in channels else []
    for channel in ROBOT_CHANNELS:
        connection = department.robot_connection(channel)
        if channel in channels and connection:
            out.append(Recipient(channel, connection))
    return out


def department_recipients(registry: Registry, department: str) -> list[Recipient]:
    """A department's contacts with an e-mail address and its robots, through the channels it chose for them."""
    dept = registry.departments.get(department)
    if dept is None:
        return []
    return channel_recipients(dept, "contacts", (c.email for c in dept.contacts))


def leader_recipients(registry: Registry, department: str) -> list[Recipient]:
    """The department's leader (分管领导, ``leader:`` in its YAML), for escalations (催报 ladder); [] if none."""
    dept = registry.departments.get(department)
    if dept is None or dept.leader is None:
        return []
    # Through the channels the department chose for its leader (``channels.leader``): e-mail, its robots.
    return channel_recipients(dept, "leader", [dept.leader.email])


def _relative_to_var(path: Path | str | None) -> str | None:
    if path is None:
        return None
    path = Path(path)
    var = get_settings().var
    return str(path.relative_to(var)) if path.is_absolute() and path.is_relative_to(var) else str(path)


def queue_notice(conn: psycopg.Connection, *, dedupe_key: str, kind: str, subject: str, body: str,
                 recipients: Iterable[Recipient], department: str | None = None, source_id: str | None = None,
                 load_id: str | None = None, attachment: Path | str | None = None,
                 topic: str | None = None, rank: int = 0, link: str | None = None,
                 inline_images: Sequence[Path | str] = ()) -> int | None:
    """Queue a notice and one delivery per recipient (duplicates dropped); the new notice's id.

    None when a notice with this ``dedupe_key`` already exists (it is not queued again) or it
    has no recipient. Runs in the caller's transaction: commit it with the fact announced.
    ``attachment`` is stored relative to ``var/`` when it lies under it, and so are ``inline_images``: PNGs an
    e-mail shows in its body (:func:`html_body`; file names unique within the notice). Notices of one ladder
    (e.g. the reminders of one obligation) share a ``topic``; one of higher ``rank`` supersedes
    the lower ones' deliveries to the same recipient that are still pending.
    ``link`` (a platform address built from platform ids, never citizens' data) ends the body after masking,
    so a batch id that happens to look like a number is never starred out of the address.
    """
    unique = _deliverable(dedupe_key, kind, recipients)
    if not unique:
        return None
    row = conn.execute(
        "insert into ops.notices (dedupe_key, kind, department, source_id, load_id, subject, body, attachment,"
        " topic, rank, inline_images) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (dedupe_key) do nothing returning notice_id",
        (dedupe_key, kind, department, source_id, load_id, mask_text(subject),
         mask_text(body) + (f"\n\n{link}" if link else ""), _relative_to_var(attachment), topic, rank,
         [_relative_to_var(image) for image in inline_images])).fetchone()
    if row is None:
        return None
    with conn.cursor() as cur:
        cur.executemany("insert into ops.notice_deliveries (notice_id, channel, recipient) values (%s, %s, %s)",
                        [(row[0], r.channel, r.address) for r in unique])
    log.info("notice %s queued (%s, %d recipients)", dedupe_key, kind, len(unique))
    return int(row[0])


def _deliverable(dedupe_key: str, kind: str, recipients: Iterable[Recipient]) -> list[Recipient]:
    """The recipients with an address, duplicates dropped; unknown channels are an error, none a warning."""
    unique = list(dict.fromkeys(r for r in recipients if r.address))
    unknown = {r.channel for r in unique} - set(CHANNELS)
    if unknown:
        raise ValueError(f"notice {dedupe_key}: unknown channel(s) {sorted(unknown)}; known: {CHANNELS}")
    if not unique:
        log.warning("notice %s (%s) has no recipient; not queued", dedupe_key, kind)
    return unique


@dataclass(frozen=True)
class NoticeDraft:
    """A notice to queue with :func:`queue_notices` (the arguments of :func:`queue_notice`, without attachment)."""

    dedupe_key: str
    kind: str
    subject: str
    body: str
    recipients: tuple[Recipient, ...]
    department: str | None = None
    source_id: str | None = None
    load_id: str | None = None
    topic: str | None = None  # a ladder's notices share one; a higher rank supersedes (see queue_notice)
    rank: int = 0


def queue_notices(conn: psycopg.Connection, drafts: Iterable[NoticeDraft]) -> list[str]:
    """:func:`queue_notice` for many notices in two statements (a producer of hundreds, e.g. the 催报 ladder).

    Same rules: a dedupe key already in the outbox is not queued again, a draft without recipient is
    skipped, text is masked, the caller's transaction. Returns the dedupe keys queued now.
    """
    ready = {d.dedupe_key: (d, _deliverable(d.dedupe_key, d.kind, d.recipients)) for d in drafts}
    ready = {key: pair for key, pair in ready.items() if pair[1]}
    if not ready:
        return []
    notices = [d for d, _ in ready.values()]
    rows = conn.execute(
        "insert into ops.notices (dedupe_key, kind, department, source_id, load_id, subject, body, topic, rank)"
        " select * from unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
        " %s::text[], %s::integer[]) on conflict (dedupe_key) do nothing returning notice_id, dedupe_key",
        ([d.dedupe_key for d in notices], [d.kind for d in notices], [d.department for d in notices],
         [d.source_id for d in notices], [d.load_id for d in notices], [mask_text(d.subject) for d in notices],
         [mask_text(d.body) for d in notices], [d.topic for d in notices], [d.rank for d in notices])).fetchall()
    deliveries = [(notice_id, r.channel, r.address) for notice_id, key in rows for r in ready[key][1]]
    conn.execute("insert into ops.notice_deliveries (notice_id, channel, recipient)"
                 " select * from unnest(%s::bigint[], %s::text[], %s::text[])",
                 [list(column) for column in zip(*deliveries, strict=True)] if deliveries else [[], [], []])
    log.info("%d notice(s) queued", len(rows))
    return [key for _, key in rows]


def _rule_counts(conn: psycopg.Connection, load_id: str) -> list[tuple[str, int]]:
    rows = conn.execute(
        "select coalesce(v->>'rule', 'columns') as rule, count(distinct q.row_no) from quarantine.rows q,"
        " jsonb_array_elements(q.violations) v where q.load_id = %s group by 1 order by 2 desc, 1",
        (load_id,)).fetchall()
    return [(problem_name(rule), count) for rule, count in rows]


def queue_held_notice(conn: psycopg.Connection, registry: Registry, load_id: str) -> int | None:
    """Tell the department and the stewards that a batch is held over its tolerance (once per batch)."""
    row = conn.execute(
        "select source_id, department, reference, rows_received, rows_quarantined, status,"
        " to_char(received_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') from ops.loads"
        " where load_id = %s", (load_id,)).fetchone()
    if row is None or row[5] != "held":
        return None
    source_id, department, reference, received, quarantined, _, received_at = row
    source = registry.source(source_id)
    dept_name = registry.departments[department].name if department in registry.departments else department
    received, quarantined = received or 0, quarantined or 0
    rate = quarantined / received if received else 0.0
    problems = "\n".join(f"  · {name}：{count}行" for name, count in _rule_counts(conn, load_id))
    body = (f"{dept_name}：\n\n"
            f"贵单位于{received_at}报送的《{source.title}》文件「{reference}」共{received}行，"
            f"其中{quarantined}行不符合数据规范（{rate:.1%}），超过允许的{source.tolerance:.0%}。"
            "本批次已暂缓入库，全部数据均未公示。\n\n"
            f"主要问题：\n{problems}\n\n"
            "问题数据反馈表列出了每一行问题数据及原因，将另行送达。请修正后整批重新报送。\n\n"
            f"批次编号：{load_id}\n（本邮件由汇聚平台自动发送）")
    subject = f"【数据暂缓入库】{dept_name}《{source.title}》{reference}：{quarantined}/{received}行有问题"
    return queue_notice(conn, dedupe_key=f"held:{load_id}", kind="held", subject=subject, body=body,
                        recipients=[*department_recipients(registry, department), *steward_recipients()],
                        department=department, source_id=source_id, load_id=load_id)


def queue_feedback_notice(conn: psycopg.Connection, registry: Registry, load_id: str, workbook: Path, rows: int,
                          *, delivered_to: str = "") -> int | None:
    """Tell the department its feedback workbook (问题数据反馈) is ready, with the portal link to download it.

    ``delivered_to`` says where else it was put (the inbox's outbox folder, an SFTP directory). The
    notice never carries the workbook: the link opens the batch's page on the departments' portal
    (:func:`huiju.settings.portal_batch_url`), where only a logged-in account of that department gets it.
    """
    load = conn.execute("select source_id, department, reference, status from ops.loads where load_id = %s",
                        (load_id,)).fetchone()
    if load is None:
        raise KeyError(f"no load {load_id!r} in the ledger")
    source_id, department, reference, status = load
    source = registry.source(source_id)
    dept_name = registry.departments[department].name if department in registry.departments else department
    where = (f"问题数据反馈表「{workbook.name}」已放至{delivered_to}，也可登录汇聚平台部门门户下载（链接见文末）。"
             if delivered_to else
             f"问题数据反馈表「{workbook.name}」请登录汇聚平台部门门户下载（链接见文末；为保护数据安全，反馈表不作为邮件附件发送）。")
    outcome = ("本批次问题数据比例超过允许范围，已暂缓入库，请修正后整批重新报送。" if status == "held"
               else "其余数据已入库；请只修正问题数据后重新报送。")
    body = (f"{dept_name}：\n\n贵单位报送的《{source.title}》文件「{reference}」中有{rows}行问题数据。"
            f"{where}表中红色单元格为有问题的值，「原因」列说明了原因。{outcome}\n\n"
            f"批次编号：{load_id}\n（本邮件由汇聚平台自动发送）")
    subject = f"【问题数据反馈】{dept_name}《{source.title}》{reference}：{rows}行待更正"
    return queue_notice(conn, dedupe_key=f"feedback:{load_id}", kind="feedback", subject=subject, body=body,
                        recipients=department_recipients(registry, department), department=department,
                        source_id=source_id, load_id=load_id, link=f"部门门户下载链接：{portal_batch_url(load_id)}")


def queue_remote_file_notices(conn: psycopg.Connection, registry: Registry) -> int:
    """Turn every drop problem not yet announced (``ops.remote_file_events.notified_at`` null) into a notice.

    One transaction: the notices are queued and ``notified_at`` set together, so a problem is
    announced exactly once. Returns how many events were turned into notices.
    """
    count = 0
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        events = cur.execute(
            "select event_id, source_id, department, remote_name, kind, notice,"
            " to_char(first_seen at time zone 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') as first_seen"
            " from ops.remote_file_events where notified_at is null order by event_id"
            " for update skip locked").fetchall()
        for event in events:
            source = registry.sources.get(event["source_id"])
            title = source.title if source is not None else event["source_id"]
            dept = registry.departments.get(event["department"])
            dept_name = dept.name if dept is not None else event["department"]
            problem = REMOTE_FILE_PROBLEMS.get(event["kind"], "文件报送异常")
            body = (f"{dept_name}：\n\n{event['notice']}\n\n数据项：《{title}》\n文件：{event['remote_name']}\n"
                    f"发现时间：{event['first_seen']}\n\n（本邮件由汇聚平台自动发送）")
            queue_notice(conn, dedupe_key=f"remote_file:{event['event_id']}", kind="remote_file",
                         subject=f"【数据报送提醒】{dept_name}《{title}》{problem}：{event['remote_name']}",
                         body=body, recipients=department_recipients(registry, event["department"]),
                         department=event["department"], source_id=event["source_id"])
            cur.execute("update ops.remote_file_events set notified_at = now() where event_id = %s",
                        (event["event_id"],))
            count += 1
    return count


def supersede_pending(conn: psycopg.Connection) -> int:
    """Mark pending deliveries whose recipient got a higher-ranked notice of the same topic; how many."""
    return conn.execute(
        "update ops.notice_deliveries d set superseded_by = (select h.notice_id from ops.notices h"
        "   join ops.notice_deliveries hd on hd.notice_id = h.notice_id"
        "   where h.topic = n.topic and h.rank > n.rank and hd.channel = d.channel and hd.recipient = d.recipient"
        "   order by h.rank desc, h.notice_id desc limit 1)"
        " from ops.notices n where n.notice_id = d.notice_id and n.topic is not null"
        " and d.delivered_at is null and d.superseded_by is null"
        " and exists (select 1 from ops.notices h join ops.notice_deliveries hd on hd.notice_id = h.notice_id"
        "   where h.topic = n.topic and h.rank > n.rank and hd.channel = d.channel and hd.recipient = d.recipient)"
    ).rowcount


def _circuit_admits(cur: psycopg.Cursor[dict[str, Any]], circuit: str, limit: int | None) -> bool:
    """Lock ``circuit``'s row for this delivery's transaction; whether it is closed (or due a probe) and under its rate.

    The lock makes parallel deliverers take turns on one circuit, so its rate holds across them.
    """
    state = cur.execute(
        "insert into ops.notice_circuits as c (circuit) values (%s) on conflict (circuit) do update"
        " set updated_at = now() returning (c.reopen_at is null or c.reopen_at <= now())"
        " and (%s::integer is null or c.window_started_at is null"
        "      or c.window_started_at <= now() - interval '1 minute' or c.sent_in_window < %s) as admits",
        (circuit, limit, limit)).fetchone()
    return bool(state["admits"])


def _record_attempt(cur: psycopg.Cursor[dict[str, Any]], circuit: str, error: str | None, breaker: Breaker) -> bool:
    """Count one attempt through ``circuit`` in its window and its breaker; True when this failure opened it."""
    state = cur.execute(
        "insert into ops.notice_circuits as c (circuit) values (%s) on conflict (circuit) do update"
        " set updated_at = now() returning c.consecutive_failures, c.opened_at, c.cooldown,"
        " c.window_started_at is null or c.window_started_at <= now() - interval '1 minute' as new_window",
        (circuit,)).fetchone()
    failures, opened_at, cooldown, new_window = (state[k] for k in ("consecutive_failures", "opened_at", "cooldown",
                                                                    "new_window"))
    window = ("window_started_at = now(), sent_in_window = 1" if new_window
              else "sent_in_window = sent_in_window + 1")
    if error is None:
        cur.execute(f"update ops.notice_circuits set {window}, consecutive_failures = 0, opened_at = null,"
                    " reopen_at = null, cooldown = null, last_error = null where circuit = %s", (circuit,))
        if opened_at is not None:
            log.info("notice circuit %s closed again", circuit)
        return False
    failures += 1
    opens = failures >= breaker.threshold
    if opens:
        # The first opening waits the cool-down; each failed probe after it waits twice as long, bounded.
        cooldown = breaker.cooldown if opened_at is None else min(breaker.max_cooldown, cooldown * 2)
    cur.execute(
        f"update ops.notice_circuits set {window}, consecutive_failures = %s, last_error = %s,"
        " opened_at = case when %s then coalesce(opened_at, now()) else opened_at end,"
        " cooldown = case when %s then %s else cooldown end,"
        " reopen_at = case when %s then now() + %s else reopen_at end where circuit = %s",
        (failures, error, opens, opens, cooldown, opens, cooldown, circuit))
    if opens:
        log.warning("notice circuit %s open after %d consecutive failures: no attempt before %s from now",
                    circuit, failures, cooldown)
    return opens


def deliver_pending(conn: psycopg.Connection, senders: Mapping[str, Sender], *, limit: int = 500,
                    max_attempts: int = 5, retry_delay: timedelta = timedelta(minutes=5),
                    breaker: Breaker | None = None) -> DeliveryReport:
    """Send pending deliveries of the channels in ``senders``; each recorded in its own committed transaction.

    A delivery is pending while ``delivered_at`` and ``superseded_by`` are null, it has had fewer
    than ``max_attempts`` attempts, its ``next_attempt_at`` has come and its circuit is neither
    open nor over its rate (``breaker``); after a failure the next attempt waits ``retry_delay`` ×
    attempts. Deliveries a higher-ranked notice of their topic overtook are superseded first.
    Channels without a sender stay pending for a deliverer that has one. Must be called outside a
    transaction (it commits).
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise RuntimeError("deliver_pending commits after each delivery: call it outside a transaction")
    breaker = breaker or Breaker()
    report = DeliveryReport()
    with conn.transaction():
        report.superseded = supersede_pending(conn)
    if report.superseded:
        log.info("%d pending deliveries superseded by a later notice of their topic", report.superseded)
    var = get_settings().var
    channels = [c for c in senders if c in CHANNELS]
    rates = Jsonb(dict(breaker.per_minute))
    skipped: set[str] = set()  # failed in this run: not tried again now
    paused: set[str] = set()  # circuits open or at their rate: nothing more through them in this run
    while report.delivered + report.failed < limit:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "select d.notice_id, d.channel, d.recipient, d.attempts, n.dedupe_key, n.kind, n.department,"
                f" n.subject, n.body, n.attachment, n.inline_images, {_CIRCUIT_SQL} as circuit"
                " from ops.notice_deliveries d"
                " join ops.notices n using (notice_id)"
                f" left join ops.notice_circuits c on c.circuit = {_CIRCUIT_SQL}"
                " where d.delivered_at is null and d.superseded_by is null and d.attempts < %s"
                " and d.next_attempt_at <= now()"
                " and d.channel = any(%s) and not (d.notice_id || '|' || d.channel || '|' || d.recipient = any(%s))"
                f" and not ({_CIRCUIT_SQL} = any(%s))"
                " and (c.reopen_at is null or c.reopen_at <= now())"
                " and (c.window_started_at is null or c.window_started_at <= now() - interval '1 minute'"
                "      or c.sent_in_window < coalesce((%s::jsonb ->> d.channel)::integer, 2147483647))"
                " order by d.next_attempt_at, d.notice_id, d.channel, d.recipient"
                " limit 1 for update of d skip locked",
                (max_attempts, channels, sorted(skipped), sorted(paused), rates)).fetchone() if channels else None
            if row is None:
                break
            if not _circuit_admits(cur, row["circuit"], breaker.per_minute.get(row["channel"])):
                paused.add(row["circuit"])  # another deliverer opened it or filled its minute meanwhile
                continue
            key = (row["notice_id"], row["channel"], row["recipient"])
            attachment = row["attachment"]
            outgoing = Outgoing(
                notice_id=row["notice_id"], dedupe_key=row["dedupe_key"], kind=row["kind"],
                department=row["department"], channel=row["channel"], recipient=row["recipient"],
                subject=row["subject"], body=row["body"],
                attachment=None if attachment is None else var / attachment,
                inline_images=tuple(var / image for image in row["inline_images"]))
            try:
                for needed in (outgoing.attachment, *outgoing.inline_images):
                    if needed is not None and not needed.is_file():
                        raise FileNotFoundError(f"attachment {needed} is missing")
                senders[row["channel"]](outgoing)
            except Exception as exc:  # any sender failure is recorded and retried; the loop goes on
                error = mask_text(f"{type(exc).__name__}: {exc}")[:2000]
                cur.execute(
                    "update ops.notice_deliveries set attempts = attempts + 1, last_error = %s,"
                    " last_attempt_at = now(), next_attempt_at = now() + %s * (attempts + 1)"
                    " where notice_id = %s and channel = %s and recipient = %s",
                    (error, retry_delay, *key))
                if not isinstance(exc, FileNotFoundError) and _record_attempt(cur, row["circuit"], error, breaker):
                    report.opened.append(row["circuit"])
                skipped.add(f"{key[0]}|{key[1]}|{key[2]}")
                report.failed += 1
                report.errors.append(f"{row['dedupe_key']} → {row['channel']}:{row['recipient']}: {error}")
                log.warning("notice %s to %s:%s failed (attempt %d): %s", row["dedupe_key"], row["channel"],
                            row["recipient"], row["attempts"] + 1, error)
                continue
            cur.execute(
                "update ops.notice_deliveries set attempts = attempts + 1, last_error = null,"
                " last_attempt_at = now(), delivered_at = now()"
                " where notice_id = %s and channel = %s and recipient = %s", key)
            _record_attempt(cur, row["circuit"], None, breaker)
            report.delivered += 1
            log.info("notice %s delivered to %s:%s", row["dedupe_key"], row["channel"], row["recipient"])
    return report


def run_notices(conn: psycopg.Connection, registry: Registry, senders: Mapping[str, Sender],
                **options: object) -> DeliveryReport:
    """The notify step: queue what the drops reported, then deliver everything pending (see :func:`deliver_pending`)."""
    queued = queue_remote_file_notices(conn, registry)
    if queued:
        log.info("%d file-drop problem(s) turned into notices", queued)
    return deliver_pending(conn, senders, **options)  # type: ignore[arg-type]


def robot_markdown(outgoing: Outgoing) -> str:
    """A notice as a group robot's markdown (DingTalk, WeCom): the subject as a heading, paragraphs kept."""
    text = f"#### {outgoing.subject}\n\n" + outgoing.body.replace("\n", "\n\n")
    if outgoing.attachment is not None:
        text += "\n\n（附件已通过电子邮件发送给贵单位的联系人）"
    return text


def html_body(text: str, inline_images: Sequence[Path] = ()) -> str:
    """A plain-text notice as simple HTML for e-mail (escaped; line breaks kept), then its inline images.

    Each image is shown by ``cid:<its file name>``: the Content-ID the smtp provider's hook gives each file it
    sends (``SmtpHook.send_email_smtp``), the message then ``multipart/related`` (huiju_airflow.tasks.email_sender).
    """
    images = "".join(f'<p><img src="cid:{html.escape(image.name)}" alt="{html.escape(image.stem)}"'
                     ' style="max-width:100%"></p>\n' for image in inline_images)
    return ("<div style=\"font-family:sans-serif\">" + html.escape(text).replace("\n", "<br>\n") + images
            + "</div>")
