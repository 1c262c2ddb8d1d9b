"""Sharing requests (业务系统类数据共享) and their decisions, by the resource's share type.

A department files a request for a catalogued resource (:func:`file_request`): the fields it needs (each an
信息项 of the resource), an optional row scope (columns the catalogue allows, e.g. its district, which must
match rows), its purpose and a duration. Then, by the resource's 共享类型:

- 无条件共享 → approved and provisioned at once, or first checked by the bureau where the resource says so
  (``bureau_check``; within ``check_working_days``);
- 有条件共享 → pending: the owning department's 审批人 decide within ``approval_working_days``, or the bureau
  decides on its behalf with an uploaded approval document (kept in the archive, its hash in the request);
- 不予共享 → refused at once, with the catalogue's stated basis.

Who may decide is checked here (:func:`decide`), not only in the pages: a department's approver decides its
own resources' requests only. Deadlines are counted in working days (huiju.workdays); :func:`remind_and_escalate`
reminds before a deadline and escalates to the department's leader and the stewards after it, through the
notices outbox. Every step is in the audit trail (:mod:`huiju.sharing.audit`), in the same transaction.
Bad input raises :class:`RequestRefused` with a Chinese message, before anything is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from huiju.notices import department_recipients, leader_recipients, queue_notice, steward_recipients
from huiju.registry import Registry
from huiju.schema import did_you_mean
from huiju.sharing import audit, grants
from huiju.sharing.catalogue import CatalogueEntry
from huiju.sharing.config import Receiver, SharingPolicy, load_receivers
from huiju.sharing.documents import store_document
from huiju.workdays import CalendarGap, add_working_days, working_days_between

log = logging.getLogger(__name__)

STATUS_LABELS = {"checking": "待数据局审核", "pending": "待审批", "approved": "已批准并开通", "refused": "未通过",
                 "revoked": "已撤销", "expired": "已到期"}
AUDIT_KIND_LABELS = {"filed": "提交申请", "approved": "同意", "refused": "不同意", "provisioned": "开通授权",
                     "credentials_issued": "获取访问凭据", "db_read": "数据库读取", "api_read": "接口读取",
                     "reminded": "到期提醒", "escalated": "超时督办", "revoked": "撤销授权", "expired": "授权到期",
                     "delivery_read": "定期交付读取", "push_queued": "推送排队", "pushed": "推送送达",
                     "exported": "导出数据文件", "file_downloaded": "下载数据文件"}
DECIDED_AS_LABELS = {"auto": "无条件共享，自动开通", "bureau_check": "数据局审核", "department": "提供部门审批",
                     "bureau": "数据局代为审批（附审批件）", "policy": "不予共享"}


class RequestRefused(ValueError):
    """The request or decision cannot be taken as given; the message (Chinese) says why. Nothing was stored."""


class NotAllowed(PermissionError):
    """The person may not do this (e.g. decide another department's request); the message is Chinese."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a portal account's name, department (None for the bureau's stewards) and roles."""

    username: str
    department: str | None
    roles: frozenset[str]

    @property
    def is_steward(self) -> bool:
        """数据管理员 of the bureau."""
        return "steward" in self.roles


@dataclass(frozen=True)
class Outcome:
    """Where a request stands after a step."""

    request_id: int
    status: str
    grant_id: int | None = None

    @property
    def label(self) -> str:
        """The status in Chinese."""
        return STATUS_LABELS[self.status]


def _deadline(start: date, working_days: int) -> date | None:
    try:
        return add_working_days(start, working_days)
    except CalendarGap as exc:  # the next year's holidays are not published yet: no deadline rather than a guess
        log.warning("sharing deadline not set: %s", exc)
        return None


def _hint(word: str, choices: Iterable[str]) -> str:
    """``（是否是 'x'？）`` for the closest of ``choices``, or ``""``."""
    close = did_you_mean(word, choices)
    return f"（是否是 {close.split('mean ', 1)[1].rstrip(')?')}？）" if close else ""


def _check_fields(entry: CatalogueEntry, fields: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(field.strip() for field in fields if field and field.strip()))
    if not chosen:
        raise RequestRefused("请至少选择一个需要的信息项")
    columns = [item.column for item in entry.items]
    for field in chosen:
        if field not in columns:
            raise RequestRefused(f"信息项 {field!r} 不属于信息资源「{entry.name}」{_hint(field, columns)}；"
                                 f"可选的信息项：{'、'.join(columns)}")
    return chosen


def _require_relation(conn: psycopg.Connection, entry_name: str, relation: str) -> None:
    """:class:`RequestRefused` when the resource's relation is not in the warehouse yet (its dbt model never built)."""
    if conn.execute("select to_regclass(%s) is null", (relation,)).fetchone()[0]:
        raise RequestRefused(f"信息资源「{entry_name}」的数据尚未生成（{relation} 不存在），暂不能办理；"
                             "请待数据构建完成后再试")


def _check_scope(conn: psycopg.Connection, entry: CatalogueEntry,
                 row_scope: Mapping[str, Iterable[str]] | None) -> dict[str, list[str]]:
    scope: dict[str, list[str]] = {}
    for column, values in (row_scope or {}).items():
        kept = sorted({str(value).strip() for value in values if str(value).strip()})
        if not kept:
            continue
        if column not in entry.scope_fields:
            allowed = "、".join(entry.scope_fields) or "（该资源不支持按行限定）"
            raise RequestRefused(f"不能按 {column!r} 限定数据范围；信息资源「{entry.name}」可限定的字段：{allowed}")
        scope[column] = kept
    if scope and entry.share_type != "not_shared":
        _require_relation(conn, entry.name, entry.relation)
        schema, name = entry.relation.split(".", 1)
        where = sql.SQL(" and ").join(sql.SQL("{}::text = any(%s)").format(sql.Identifier(column))
                                      for column in scope)
        query = sql.SQL("select exists (select from {}.{} where {})").format(sql.Identifier(schema),
                                                                          sql.Identifier(name), where)
        if not conn.execute(query, list(scope.values())).fetchone()[0]:
            described = "；".join(f"{entry.item(column).name if entry.item(column) else column} = "
                                 f"{'、'.join(values)}" for column, values in scope.items())
            raise RequestRefused(f"数据范围（{described}）在信息资源「{entry.name}」中没有任何数据，请检查取值")
    return scope


def _delivery(entry: CatalogueEntry, department: str, receivers: Mapping[str, Receiver] | None) -> str | None:
    """How a grant of ``entry`` reaches the requesting ``department`` on a schedule, when the resource is shared by
    push: ``push`` to the system the department declared (``config/sharing/receivers/``), else ``export`` (a
    file in its portal download area); None for a resource not shared by push."""
    if entry.share_type == "not_shared" or not entry.offers("push"):
        return None
    receivers = load_receivers() if receivers is None else receivers
    return "push" if department in receivers else "export"


def file_request(conn: psycopg.Connection, catalogue: Mapping[str, CatalogueEntry], policy: SharingPolicy,
                 actor: Actor, *, resource_id: str, fields: Iterable[str], purpose: str, duration_days: int,
                 row_scope: Mapping[str, Iterable[str]] | None = None, today: date | None = None,
                 registry: Registry | None = None, idempotency_key: str | None = None,
                 receivers: Mapping[str, Receiver] | None = None) -> Outcome:
    """File a department's request; it takes the path of the resource's share type (module docstring).

    ``idempotency_key``: the same key filed again returns the first request's outcome (a form sent twice).
    ``receivers``: the departments' receiving systems (default: ``config/sharing/receivers/``); a request for a
    resource shared by push is delivered each period once approved (``delivery``): pushed to its department's
    system, or exported as a file to its download area when the department declared none.
    """
    if idempotency_key:
        existing = conn.execute("select request_id, status from sharing.requests where idempotency_key = %s",
                                (idempotency_key,)).fetchone()
        if existing:
            grant = conn.execute("select grant_id from sharing.grants where request_id = %s",
                                 (existing[0],)).fetchone()
            return Outcome(existing[0], existing[1], grant[0] if grant else None)
    entry = catalogue.get(resource_id)
    if entry is None:
        raise RequestRefused(f"目录中没有信息资源 {resource_id!r}{_hint(resource_id, catalogue)}")
    if actor.department is None:
        raise NotAllowed("共享申请由需要数据的部门提出；数据管理员不能以部门身份申请")
    chosen = _check_fields(entry, fields)
    purpose = " ".join((purpose or "").split())
    if len(purpose) < 4:
        raise RequestRefused("请写明用途（至少4个字），如：用于本部门行政审批中核验企业登记信息")
    if not 1 <= int(duration_days) <= policy.max_duration_days:
        raise RequestRefused(f"共享期限须在 1 至 {policy.max_duration_days} 天之间")
    scope = _check_scope(conn, entry, row_scope)
    delivery = _delivery(entry, actor.department, receivers)
    today = today or date.today()
    if entry.share_type == "not_shared":
        status, decided_as, due_on, reason = "refused", "policy", None, f"不予共享：{entry.condition}"
    elif entry.share_type == "conditional":
        status, decided_as, reason = "pending", None, None
        due_on = _deadline(today, policy.approval_working_days)
    elif entry.bureau_check:
        status, decided_as, due_on, reason = "checking", None, _deadline(today, policy.check_working_days), None
    else:
        _require_relation(conn, entry.name, entry.relation)
        status, decided_as, due_on, reason = "approved", "auto", None, None
    with conn.cursor(row_factory=dict_row) as cur:
        request = cur.execute(
            "insert into sharing.requests (resource_id, relation, share_type, requester_department, requested_by,"
            " purpose, fields, row_scope, duration_days, status, deciding_department, due_on, decided_at,"
            " decided_by, decided_as, reason, idempotency_key, delivery) values (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, case when %s::text is null then null else now() end, %s, %s, %s, %s, %s) returning *",
            (entry.id, entry.relation, entry.share_type, actor.department, actor.username, purpose, chosen,
             Jsonb(scope), int(duration_days), status, entry.approver if status == "pending" else None, due_on,
             decided_as, "system" if decided_as else None, decided_as, reason, idempotency_key,
             delivery)).fetchone()
    request_id = request["request_id"]
    detail = {"resource": entry.id, "department": actor.department, "fields": chosen, "row_scope": scope,
              "duration_days": int(duration_days), "share_type": entry.share_type}
    if request["delivery"]:
        detail["delivery"] = request["delivery"]
    audit.record(conn, "filed", actor.username, request_id=request_id, detail=detail)
    grant_id = None
    if status == "refused":
        audit.record(conn, "refused", "system", request_id=request_id, detail={"as": "policy", "reason": reason})
    elif status == "approved":
        audit.record(conn, "approved", "system", request_id=request_id, detail={"as": "auto"})
        grant_id = grants.provision(conn, request, "system")
    elif registry is not None:
        _notify_decider(conn, registry, policy, entry, request, "新的共享申请待处理")
    return Outcome(request_id, status, grant_id)


def _notify_decider(conn: psycopg.Connection, registry: Registry, policy: SharingPolicy, entry: CatalogueEntry,
                    request: Mapping[str, Any], what: str, *, escalate: bool = False) -> int | None:
    """Tell whoever decides the request (the owning department's contacts, or the stewards for the bureau's check);
    ``escalate``: also the department's leader and the stewards (督办)."""
    deciding = request["deciding_department"]
    recipients = department_recipients(registry, deciding) if deciding else steward_recipients()
    if escalate:
        recipients = [*recipients, *(leader_recipients(registry, deciding) if deciding else []),
                      *steward_recipients()]
    who = registry.departments[deciding].name if deciding in registry.departments else policy.bureau.name
    requester = registry.departments.get(request["requester_department"])
    due = request["due_on"].isoformat() if request["due_on"] else "（未定）"
    step = "escalate" if escalate else ("remind" if what.startswith("提醒") else "new")
    return queue_notice(
        conn, dedupe_key=f"sharing:{request['request_id']}:{request['status']}:{step}",
        kind="sharing_escalation" if escalate else "sharing_request",
        subject=f"【共享申请{'·督办' if escalate else ''}】{what}：{entry.name}（第 {request['request_id']} 号）",
        body=(f"{who}：\n{requester.name if requester else request['requester_department']} 申请共享信息资源"
              f"「{entry.name}」（{entry.code}），用途：{request['purpose']}。\n"
              f"办理时限：{due}（{STATUS_LABELS[request['status']]}）。请登录部门门户“共享审批”处理。"),
        recipients=recipients, department=deciding, topic=f"sharing:{request['request_id']}",
        rank=1 if escalate else 0)


def get_request(conn: psycopg.Connection, request_id: int, *, lock: bool = False) -> dict[str, Any]:
    """One request (a row of sharing.requests), with its grant id; :class:`RequestRefused` if there is none."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("select r.*, (select grant_id from sharing.grants g where g.request_id = r.request_id)"
                          " as grant_id from sharing.requests r where request_id = %s"
                          + (" for update of r" if lock else ""), (request_id,)).fetchone()
    if row is None:
        raise RequestRefused(f"没有第 {request_id} 号共享申请")
    return row


def may_decide(actor: Actor, request: Mapping[str, Any]) -> str | None:
    """How ``actor`` may decide ``request`` (``department``, ``bureau``, ``bureau_check``), or None."""
    if request["status"] == "checking":
        return "bureau_check" if actor.is_steward else None
    if request["status"] != "pending":
        return None
    if "approver" in actor.roles and actor.department and actor.department == request["deciding_department"]:
        return "department"
    return "bureau" if actor.is_steward else None


def decide(conn: psycopg.Connection, policy: SharingPolicy, actor: Actor, request_id: int, *, approve: bool,
           reason: str | None = None, document: bytes | None = None, document_name: str = "") -> Outcome:
    """Approve or refuse a request, as the owning department's approver, or as the bureau (with its document).

    A refusal needs its reason; the bureau deciding for a department needs the approval document (checked and
    archived first: a refused document leaves nothing behind). Approval provisions the grant in the same
    transaction.
    """
    request = get_request(conn, request_id, lock=True)
    if request["status"] not in ("checking", "pending"):
        raise RequestRefused(f"第 {request_id} 号申请已处理（{STATUS_LABELS[request['status']]}），不能再审批")
    decided_as = may_decide(actor, request)
    if decided_as is None:
        deciding = request["deciding_department"] or "数据局"
        raise NotAllowed(f"您不能审批第 {request_id} 号申请：它由 {deciding} 的审批人审批")
    reason = " ".join((reason or "").split()) or None
    if not approve and not reason:
        raise RequestRefused("不同意时须写明理由")
    stored = None
    if decided_as == "bureau":
        if document is None:
            raise RequestRefused("数据局代为审批须上传提供部门的审批件（盖章扫描件 PDF/OFD/图片）")
        stored = store_document(document, document_name, policy.document)
    status = "approved" if approve else "refused"
    if approve:
        _require_relation(conn, request["resource_id"], request["relation"])
    with conn.cursor(row_factory=dict_row) as cur:
        request = cur.execute(
            "update sharing.requests set status = %s, decided_at = now(), decided_by = %s, decided_as = %s,"
            " reason = %s, document_sha256 = %s, document_ref = %s, document_name = %s where request_id = %s"
            " returning *",
            (status, actor.username, decided_as, reason, stored and stored.sha256, stored and stored.reference,
             stored and stored.name, request_id)).fetchone()
    detail: dict[str, Any] = {"as": decided_as}
    if reason:
        detail["reason"] = reason
    if stored:
        detail.update(document_sha256=stored.sha256, document=stored.reference, document_kind=stored.kind)
    audit.record(conn, status, actor.username, request_id=request_id, detail=detail)
    grant_id = grants.provision(conn, request, actor.username) if approve else None
    return Outcome(request_id, status, grant_id)


def revoke(conn: psycopg.Connection, actor: Actor, request_id: int, reason: str) -> Outcome:
    """Revoke an approved request's grant (the steward, or the owning department's approver): access ends at once."""
    request = get_request(conn, request_id, lock=True)
    owner = "approver" in actor.roles and actor.department == request["deciding_department"]
    if not (actor.is_steward or owner):
        raise NotAllowed(f"您不能撤销第 {request_id} 号申请的授权")
    if request["status"] != "approved" or request["grant_id"] is None:
        raise RequestRefused(f"第 {request_id} 号申请没有生效中的授权（{STATUS_LABELS[request['status']]}）")
    reason = " ".join((reason or "").split())
    if not reason:
        raise RequestRefused("撤销授权须写明理由")
    grants.end_grant(conn, request["grant_id"], ended_as="revoked", actor=actor.username, reason=reason)
    return Outcome(request_id, "revoked", request["grant_id"])


def requests_for(conn: psycopg.Connection, *, requester: str | None = None, decider: str | None = None,
                 statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Requests filed by department ``requester``, or decided by department ``decider`` (None: every request)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select r.*, g.grant_id, g.expires_at, g.ended_at from sharing.requests r"
            " left join sharing.grants g using (request_id)"
            " where (%(requester)s::text is null or r.requester_department = %(requester)s)"
            " and (%(decider)s::text is null or r.deciding_department = %(decider)s)"
            " and (%(statuses)s::text[] is null or r.status = any(%(statuses)s))"
            " order by r.request_id desc",
            {"requester": requester, "decider": decider,
             "statuses": list(statuses) if statuses is not None else None}).fetchall()


def remind_and_escalate(conn: psycopg.Connection, registry: Registry, policy: SharingPolicy,
                        catalogue: Mapping[str, CatalogueEntry], today: date) -> dict[str, int]:
    """Remind the decider of requests due within ``remind_before_working_days``; escalate those past due.

    Each reminder and escalation is queued once per request and step (the outbox's dedupe key) and audited.
    """
    counts = {"reminded": 0, "escalated": 0}
    for request in requests_for(conn, statuses=("checking", "pending")):
        entry = catalogue.get(request["resource_id"])
        if entry is None or request["due_on"] is None:
            continue
        if today > request["due_on"]:
            kind, what, escalate = "escalated", "已超过办理时限", True
        elif working_days_between(today, request["due_on"]) <= policy.remind_before_working_days:
            kind, what, escalate = "reminded", "提醒：即将到期", False
        else:
            continue
        if _notify_decider(conn, registry, policy, entry, request, what, escalate=escalate) is not None:
            audit.record(conn, kind, "system", request_id=request["request_id"],
                         detail={"due_on": request["due_on"].isoformat()})
            counts[kind] += 1
    return counts
