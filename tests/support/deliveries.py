"""Synthetic departments, sources and batches for the monitoring tests: registry objects built in code and
``ops.loads`` / ``ops.feedback`` rows written directly, as the ingest path would have left them."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import psycopg

from huiju.registry import Department, Leader, Obligation, Registry, Source, load_registry

SHANGHAI = ZoneInfo("Asia/Shanghai")


def source(source_id: str, department: str, *, cadence: str = "monthly", channel: str = "inbox",
           **obligation: object) -> Source:
    """A source of dataset admin_penalty with the given cadence and obligation keys."""
    extra = {"format": "csv"} if channel in ("inbox", "ftp", "sftp", "portal") else {}
    return Source(id=source_id, title=f"数据项{source_id}", dataset="admin_penalty", channel=channel,
                  columns={"当事人名称": "party_name"}, cadence=cadence, department=department,
                  obligation=Obligation(**obligation), **extra)


def registry(sources: list[Source], *, leader: bool = True) -> Registry:
    """The real datasets, one department per distinct code among ``sources`` (with a leader), and ``sources``."""
    real = load_registry()
    codes = sorted({s.department for s in sources})
    departments = {
        code: Department(code=code, name=f"测试局{code}",
                         contacts=({"name": "联系人", "email": f"{code}@example.gov.cn"},),
                         leader=Leader(name="王局长", title="副局长", email=f"{code}-leader@example.gov.cn")
                         if leader else None)
        for code in codes}
    return Registry(datasets=real.datasets, departments=departments, sources={s.id: s for s in sources})


def at(day: date, hour: int = 10) -> datetime:
    """``hour`` o'clock on ``day`` in Asia/Shanghai."""
    return datetime.combine(day, time(hour), SHANGHAI)


def add_load(conn: psycopg.Connection, src: Source, received: datetime, *, rows: int = 100, quarantined: int = 0,
             status: str = "published", resubmission_of: str | None = None, feedback_rows: int | None = None,
             tag: str = "") -> str:
    """A batch of ``src`` received at ``received``; its ledger row (and feedback row, if given); the load id."""
    digest = hashlib.sha256(f"{src.id}|{received.isoformat()}|{tag}".encode()).hexdigest()
    load_id = f"{src.id}-{digest[:16]}"
    accepted = None if status in ("held", "failed", "received") else rows - quarantined
    conn.execute(
        "insert into ops.loads (load_id, source_id, department, dataset, channel, reference, sha256, bytes, status,"
        " rows_received, rows_accepted, rows_quarantined, received_at, resubmission_of)"
        " values (%s, %s, %s, %s, %s, %s, %s, 1, %s, %s, %s, %s, %s, %s)",
        (load_id, src.id, src.department, src.dataset, src.channel, f"{src.id}_{received:%Y%m%d%H%M}.csv", digest,
         status, rows, accepted, quarantined, received, resubmission_of))
    if feedback_rows is not None:
        conn.execute("insert into ops.feedback (load_id, path, rows, channel, delivered_at) values (%s, %s, %s,"
                     " 'inbox', %s)", (load_id, f"outbox/{load_id}.xlsx", feedback_rows, received))
    return load_id
