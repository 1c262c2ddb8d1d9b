"""Records a credit platform rejected go back to the department that supplied them, as problem data.

Through the feedback path every channel uses (:mod:`huiju.feedback`): a 问题数据反馈 workbook in the
department's own columns, the values it sent (from ``raw``) and the platform's reason in 原因, written
to ``var/outbox/<source>/``, and a notice to the department's contacts (:mod:`huiju.notices`). One
workbook per target and supplying batch; each rejected outbox row is marked ``fed_back_at`` in the same
transaction as its notice, so a rejection is announced once. The workbook is recorded in
``ops.push_rejection_workbooks`` (migration 192), so the department's portal history lists and serves it.
Runs as the validation component (it reads ``raw`` and writes notices).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import psycopg
from psycopg import sql

from huiju.feedback import department_rows, feedback_path, write_problem_workbook
from huiju.ledger import get_load
from huiju.notices import department_recipients, queue_notice
from huiju.push.targets import PushTargets
from huiju.registry import Registry
from huiju.settings import get_settings

log = logging.getLogger(__name__)

REJECTED_RULE = "platform_rejected"


def send_rejections(conn: psycopg.Connection, registry: Registry, targets: PushTargets) -> list[Path]:
    """Write and announce a workbook for every batch with rejections not yet sent back; the workbooks."""
    written: list[Path] = []
    pending = conn.execute(
        "select distinct target, load_id from ops.push_outbox where state = 'rejected' and fed_back_at is null"
        " and load_id is not null order by target, load_id").fetchall()
    conn.commit()
    for target_name, load_id in pending:
        with conn.transaction():
            path = _rejection_workbook(conn, registry, targets[target_name].title, target_name, load_id)
        if path is not None:
            written.append(path)
    return written


def _rejection_workbook(conn: psycopg.Connection, registry: Registry, title: str, target: str,
                        load_id: str) -> Path | None:
    load = get_load(conn, load_id)
    if load is None or load.source_id not in registry.sources:
        log.warning("push %s: rejections of batch %s, which is not in the ledger or the registry", target, load_id)
        return None
    source = registry.source(load.source_id)
    dataset = registry.dataset_of(source)
    headers = list(source.columns)
    fields = [source.columns[h] for h in headers]
    rows = department_rows(conn, dataset.dataset, fields, sql.SQL(
        "select source_row_no as row_no, jsonb_build_array(jsonb_build_object('rule', %s::text)) as violations,"
        " %s || coalesce(reason, '') as reasons, load_id, outbox_id from ops.push_outbox"
        " where target = %s and load_id = %s and state = 'rejected' and fed_back_at is null"),
        (REJECTED_RULE, f"{title}退回：", target, load_id))
    if not rows:
        return None
    department = registry.departments[source.department]
    stem = f"{source.id}_{load.load_id[-6:]}_{target}退回_{max(r['outbox_id'] for r in rows)}"
    path = feedback_path(source.id, stem)

    def summary_rows(by_rule: Counter[str]) -> list[list[object]]:
        return [["问题数据反馈（信用平台退回）"], [], ["报送单位", department.name],
                ["数据项", f"{source.title}（{dataset.title}）"], ["报送文件", load.reference],
                ["批次编号", load.load_id],
                ["退回平台", title], ["退回行数", len(rows)],
                ["处理结果", "以下数据已入库，但未被信用平台接收，尚未对外公示；请按原因更正后重新报送。"]]

    write_problem_workbook(path, headers, fields, rows, summary_rows)
    relative = path.relative_to(get_settings().var) if path.is_relative_to(get_settings().var) else path
    body = (f"{department.name}：\n\n贵单位报送的《{source.title}》「{load.reference}」中有{len(rows)}条数据"
            f"被{title}退回，尚未公示。退回明细表「{path.name}」已放至汇聚平台的反馈目录（outbox/{source.id}/），"
            f"「原因」列为平台给出的原因。请更正后重新报送。\n\n批次编号：{load.load_id}\n（本邮件由汇聚平台自动发送）")
    queue_notice(conn, dedupe_key=f"push_rejected:{target}:{load_id}:{path.stem}", kind="push_rejected",
                 subject=f"【信用平台退回】{department.name}《{source.title}》：{len(rows)}条待更正", body=body,
                 recipients=department_recipients(registry, source.department), department=source.department,
                 source_id=source.id, load_id=load_id)
    conn.execute("update ops.push_outbox set fed_back_at = now() where outbox_id = any(%s)",
                 ([r["outbox_id"] for r in rows],))
    # Listed in the department's portal history (报送记录) beside the batch, and served from there.
    conn.execute("insert into ops.push_rejection_workbooks (target, target_title, load_id, path, rows)"
                 " values (%s, %s, %s, %s, %s) on conflict (target, load_id, path) do update set rows = excluded.rows,"
                 " created_at = now()", (target, title, load_id, str(relative), len(rows)))
    log.info("push %s: %d rejections of %s sent back → %s", target, len(rows), load_id, relative)
    return path
