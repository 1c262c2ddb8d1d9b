"""The demo's sharing requests (共享申请): one of each kind, after the warehouse build, through the core workflow.

``huiju demo`` calls :func:`file_demo_requests` once the share layer is built: 住房和城乡建设局 asks for
法人基础信息 (无条件共享: provisioned at once) and for 自然人行政处罚 (有条件共享: 市场监督管理局's 审批人
approves); 市场监督管理局 asks for 自然人行政许可 (有条件共享, 住房和城乡建设局's: the bureau approves on its behalf
with the approval document, a PDF kept in the archive); 税务局 asks for 人口基础信息 (不予共享: refused with its
basis). Each request carries an idempotency key of the demo day, so a second run files nothing twice. The
pages (``make up``) show them; :func:`file_demo_requests` returns where each ended, to print.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date

import psycopg
from huiju_demo.credit_platform import CreditPlatform

from huiju.channels.connection import ConnectionInfo
from huiju.registry import Registry
from huiju.sharing.catalogue import load_catalogue
from huiju.sharing.config import Receiver, load_policy, load_receivers
from huiju.sharing.delivery import outbox_name, run_share_deliveries
from huiju.sharing.workflow import Actor, decide, file_request, get_request
from huiju.warehouse import role_url
from huiju_portal.accounts import DEMO_STEWARD, demo_usernames
from huiju_portal.roles import Role

# A one-page PDF: the demo bureau's scan of 住房和城乡建设局's signed approval (审批件).
APPROVAL_DOCUMENT = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
                     b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


@dataclass(frozen=True)
class DemoRequest:
    """One demo request: who asks for what, and who decides it how."""

    kind: str  # the line's label
    resource: str
    requester: str  # department code
    fields: tuple[str, ...]
    purpose: str
    decided_by: str | None = None  # "department" (the owner's approver) or "bureau" (with the document)


REQUESTS = (
    DemoRequest("无条件共享", "legal_person", "zjj", ("uscc", "legal_person_name", "region_code"),
                "建筑业企业资质审批中核验企业登记信息"),
    DemoRequest("有条件共享·提供部门审批", "natural_person_penalty", "zjj",
                ("decision_no", "penalty_type", "authority"), "建筑市场信用评价中核查从业人员行政处罚",
                decided_by="department"),
    DemoRequest("有条件共享·数据局代审批", "natural_person_license", "scjgj", ("decision_no", "license_category"),
                "市场主体登记中核验从业资格许可", decided_by="bureau"),
    DemoRequest("不予共享", "population", "swj", ("person_key", "household_region_code"), "个人所得税汇算中核验户籍"),
)


def _actor(department: str, role: Role) -> Actor:
    return Actor(demo_usernames(department)[role], department, frozenset({role.value}))


def file_demo_requests(url: str, registry: Registry, day: date) -> list[str]:
    """File the demo's four requests (once per day), decide the conditional ones; a line per request."""
    catalogue, policy = load_catalogue(), load_policy()
    steward = Actor(DEMO_STEWARD, None, frozenset({Role.STEWARD.value}))
    lines: list[str] = []
    pushed: list[tuple[int, int]] = []  # (line, grant id) of the grants shared by push
    for demo in REQUESTS:
        entry = catalogue[demo.resource]
        with psycopg.connect(role_url("sharing", url)) as conn:  # as the portal's sharing pages connect
            outcome = file_request(conn, catalogue, policy, _actor(demo.requester, Role.SUBMITTER),
                                   resource_id=demo.resource, fields=demo.fields, purpose=demo.purpose,
                                   duration_days=90, today=day, registry=registry,
                                   idempotency_key=f"demo:{day.isoformat()}:{demo.resource}:{demo.requester}")
            if outcome.status == "pending" and demo.decided_by == "department":
                outcome = decide(conn, policy, _actor(entry.approver, Role.APPROVER), outcome.request_id, approve=True)
            elif outcome.status == "pending" and demo.decided_by == "bureau":
                outcome = decide(conn, policy, steward, outcome.request_id, approve=True,
                                 document=APPROVAL_DOCUMENT, document_name=f"{entry.provider}审批件.pdf")
            request = get_request(conn, outcome.request_id)
        if request["status"] == "approved":
            where = f"已开通 granted.grant_{request['grant_id']}"
            if request["delivery"] == "push":
                pushed.append((len(lines), request["grant_id"]))
        elif request["status"] == "refused":
            where = f"未通过（{request['reason'][:24]}…）"
        else:
            where = request["status"]
        lines.append(f"  #{request['request_id']} {demo.kind}: {registry.departments[demo.requester].name} → "
                     f"{entry.name}: {where}")
    if pushed:
        receivers = load_receivers()
        deliver_to_simulated_receivers(url, receivers, day)
        for line, grant_id in pushed:
            lines[line] += delivered_where(url, receivers, grant_id)
    return lines


def deliver_to_simulated_receivers(url: str, receivers: dict[str, Receiver], day: date) -> None:
    """Deliver the day's grants shared by push (huiju.sharing.delivery): to a simulated receiving system per
    department that declared one."""
    with ExitStack() as stack:
        running = {receiver.connection: stack.enter_context(
            CreditPlatform(name=department, auth=receiver.auth, algorithm=receiver.signature).running())
            for department, receiver in receivers.items()}

        def resolve(conn_id: str) -> ConnectionInfo:
            spec = running[conn_id].connection()
            return ConnectionInfo(conn_id=conn_id, login=spec.get("login"), password=spec.get("password"),
                                  extra=spec["extra"])

        run_share_deliveries(resolve, period=day, url=url, receivers=receivers)


def delivered_where(url: str, receivers: dict[str, Receiver], grant_id: int) -> str:
    """Where a push grant's deliveries ended: records accepted by the receiver, in which batches."""
    with psycopg.connect(role_url("push", url)) as conn:  # the push component keeps the receipts
        periods = conn.execute("select count(*), coalesce(sum(records), 0) from sharing.deliveries"
                               " where grant_id = %s", (grant_id,)).fetchone()
        accepted, batches = conn.execute(
            "select count(*) filter (where state = 'accepted'), array_agg(distinct batch_id order by batch_id)"
            " from ops.push_outbox where target = %s", (outbox_name(grant_id),)).fetchone()
        to = conn.execute("select r.requester_department from sharing.grants g join sharing.requests r"
                          " using (request_id) where g.grant_id = %s", (grant_id,)).fetchone()[0]
    title = receivers[to].title if to in receivers else to
    return (f"；数据推送至{title}：{periods[0]} 期 {periods[1]} 条，已接收 {accepted} 条"
            f"（批次 {'、'.join(b for b in batches or [] if b) or '无'}）")
