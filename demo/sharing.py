"""The demo's sharing requests (共享申请): one of each kind, after the warehouse build, through the core workflow.

``huiju demo`` calls :func:`file_demo_requests` once the share layer is built: 住房和城乡建设局 asks for
法人基础信息 (无条件共享: provisioned at once) and for 自然人行政处罚 (有条件共享: 市场监督管理局's 审批人
approves); 市场监督管理局 asks for 自然人行政许可 (有条件共享, 住房和城乡建设局's: the bureau approves on its behalf
with the approval document, a PDF kept in the archive); 税务局 asks for 人口基础信息 (不予共享: refused with its
basis). Each request carries an idempotency key of the demo day, so a second run files nothing twice. The
pages (``make up``) show them; :func:`file_demo_requests` returns where each ended, to print.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import psycopg

from huiju.registry import Registry
from huiju.sharing.catalogue import load_catalogue
from huiju.sharing.config import load_policy
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
    lines = []
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
        elif request["status"] == "refused":
            where = f"未通过（{request['reason'][:24]}…）"
        else:
            where = request["status"]
        lines.append(f"  #{request['request_id']} {demo.kind}: {registry.departments[demo.requester].name} → "
                     f"{entry.name}: {where}")
    return lines
