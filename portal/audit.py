"""The portal's audit trail (操作日志): one row in ``portal.events`` per thing a person did or was refused.

Details are for stewards reading the trail later: counts, load ids, file names, reasons — never a
password, and any ID or mobile number in a text is masked before it is stored.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from huiju.masking import mask_text

log = logging.getLogger(__name__)


def record(conn: psycopg.Connection, kind: str, *, account_id: int | None = None, username: str | None = None,
           department: str | None = None, client_addr: str | None = None, **detail: Any) -> None:
    """Add an event, in the caller's transaction (it commits with what it records)."""
    masked = json.loads(mask_text(json.dumps(detail, ensure_ascii=False, default=str)))
    conn.execute(
        "insert into portal.events (kind, account_id, username, department, client_addr, detail)"
        " values (%s, %s, %s, %s, %s, %s)",
        (kind, account_id, username, department, client_addr, Jsonb(masked)))
    log.info("portal event %s by %s (%s) from %s", kind, username, department, client_addr)
