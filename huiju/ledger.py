"""The load ledger (``ops.loads``): one row per batch, from received to published.

Status flow: ``received`` → ``validated`` → ``published``; or ``held`` (too many bad rows)
or ``failed`` (could not be read). Every change of status happens in the same transaction
as the data it describes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from huiju.masking import mask_text

STATUSES = ("received", "validated", "published", "held", "failed")


def make_load_id(source_id: str, sha256: str) -> str:
    """The deterministic id of a batch: the same content from the same source is the same load."""
    return f"{source_id}-{sha256[:16]}"


def make_content_id(*parts: str) -> str:
    """sha256 of parts joined unambiguously: a payload's identity when there is no file."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


@dataclass(frozen=True)
class LoadRecord:
    """A row of ``ops.loads`` as the rest of the core reads it."""

    load_id: str
    source_id: str
    department: str
    dataset: str
    reference: str
    sha256: str
    status: str
    rows_received: int | None
    rows_accepted: int | None
    rows_quarantined: int | None
    error: str | None
    data_date: date | None
    received_at: datetime


def get_load(conn: psycopg.Connection, load_id: str, *, for_update: bool = False) -> LoadRecord | None:
    """The ledger row of ``load_id``, or None."""
    sql = (
        "select load_id, source_id, department, dataset, reference, sha256, status, rows_received,"
        " rows_accepted, rows_quarantined, error, data_date, received_at from ops.loads where load_id = %s"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(sql + (" for update" if for_update else ""), (load_id,)).fetchone()
    return LoadRecord(**row) if row else None


def loads_with_status(conn: psycopg.Connection, source_id: str, status: str) -> list[str]:
    """Ids of a source's loads in ``status``, oldest first."""
    rows = conn.execute(
        "select load_id from ops.loads where source_id = %s and status = %s order by received_at, load_id",
        (source_id, status),
    ).fetchall()
    return [row[0] for row in rows]


def set_status(conn: psycopg.Connection, load_id: str, status: str, **columns: object) -> None:
    """Move a load to ``status`` and set the given ledger columns, in the caller's transaction."""
    if status not in STATUSES:
        raise ValueError(f"unknown load status {status!r}")
    allowed = {"rows_accepted", "rows_quarantined", "validated_at", "published_at", "validate_seconds", "error"}
    unknown = set(columns) - allowed
    if unknown:
        raise ValueError(f"cannot set ledger columns {sorted(unknown)}")
    if columns.get("error") is not None:
        columns["error"] = mask_text(str(columns["error"]))
    assignments = "".join(f", {name} = %({name})s" for name in columns)
    conn.execute(
        f"update ops.loads set status = %(status)s{assignments} where load_id = %(load_id)s",
        {"status": status, "load_id": load_id, **columns},
    )


def record_repeat(conn: psycopg.Connection, source_id: str, reference: str, sha256: str, repeat_of: str) -> bool:
    """Record that content already loaded arrived again under ``reference`` (stored masked); True if newly recorded."""
    cur = conn.execute(
        "insert into ops.repeats (source_id, reference, sha256, repeat_of) values (%s, %s, %s, %s)"
        " on conflict do nothing",
        (source_id, mask_text(reference), sha256, repeat_of),
    )
    return cur.rowcount == 1


def get_cursor(conn: psycopg.Connection, source_id: str) -> dict | None:
    """The source's stored incremental position (watermark, page, exchange state), or None."""
    row = conn.execute("select position from ops.cursors where source_id = %s", (source_id,)).fetchone()
    return row[0] if row else None


def save_cursor(conn: psycopg.Connection, source_id: str, position: dict, load_id: str | None) -> None:
    """Store the source's position, in the caller's transaction (the one that lands the rows it covers)."""
    conn.execute(
        "insert into ops.cursors (source_id, position, load_id, updated_at) values (%s, %s, %s, now())"
        " on conflict (source_id) do update set position = excluded.position, load_id = excluded.load_id,"
        " updated_at = now()",
        (source_id, Jsonb(position), load_id),
    )
