"""What happened: per department and source, rows received, accepted, quarantined, and load status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import psycopg

from huiju.registry import Registry


@dataclass(frozen=True)
class SourceSummary:
    """One line of the summary table."""

    department: str
    department_name: str
    source_id: str
    channel: str
    batches: int
    rows_received: int
    rows_accepted: int
    rows_quarantined: int
    status: str  # the statuses of the source's batches, e.g. "published" or "published×2, held"


def source_summaries(conn: psycopg.Connection, registry: Registry,
                     data_date: date | None = None) -> list[SourceSummary]:
    """Per source: totals over its batches (of ``data_date`` if given), in registry order."""
    rows = conn.execute(
        "select source_id, count(*), coalesce(sum(rows_received), 0), coalesce(sum(rows_accepted), 0),"
        " coalesce(sum(rows_quarantined), 0), string_agg(status, ',' order by status)"
        " from ops.loads where (%(day)s::date is null or data_date = %(day)s::date) group by source_id",
        {"day": data_date},
    ).fetchall()
    by_source = {row[0]: row for row in rows}
    out = []
    for source in registry.sources.values():
        _, batches, received, accepted, quarantined, statuses = by_source.get(source.id, (None, 0, 0, 0, 0, ""))
        counts: dict[str, int] = {}
        for status in filter(None, (statuses or "").split(",")):
            counts[status] = counts.get(status, 0) + 1
        label = ", ".join(f"{s}×{n}" if n > 1 else s for s, n in counts.items()) or "no delivery"
        dept = registry.departments[source.department]
        out.append(SourceSummary(dept.code, dept.name, source.id, source.channel, batches, received,
                                 accepted if "received" not in counts else 0, quarantined, label))
    return out


def layer_counts(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    """(schema, table, rows) for every table or view the platform and dbt built."""
    relations = conn.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_schema in ('raw', 'quarantine', 'staging', 'basic', 'thematic', 'archive', 'credit', 'share')"
        " order by array_position(array['raw', 'quarantine', 'staging', 'basic', 'thematic', 'archive', 'credit',"
        " 'share']::text[], table_schema::text), table_name"
    ).fetchall()
    return [(schema, name, conn.execute(
        psycopg.sql.SQL("select count(*) from {}").format(psycopg.sql.Identifier(schema, name))).fetchone()[0])
        for schema, name in relations]


def notice_counts(conn: psycopg.Connection) -> str:
    """Notices delivered per channel and still pending, e.g. ``email 12 sent, dingtalk 0 sent, 0 pending``."""
    rows = conn.execute(
        "select channel, count(*) filter (where delivered_at is not null),"
        " count(*) filter (where delivered_at is null and superseded_by is null)"
        " from ops.notice_deliveries group by channel order by channel").fetchall()
    pending = sum(row[2] for row in rows)
    sent = ", ".join(f"{channel} {delivered} sent" for channel, delivered, _ in rows) or "none sent"
    return f"{sent}, {pending} pending"


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * max(0, width - _width(text))
    return gap + text if right else text + gap


def render_table(header: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    """A plain-text table that lines up with Chinese (double-width) characters."""
    numeric = numeric or set()
    widths = [max(_width(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(_pad(h, w, i in numeric) for i, (h, w) in enumerate(zip(header, widths, strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(_pad(str(c), w, i in numeric) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
              for row in rows]
    return "\n".join(lines)


def render_summary(summaries: list[SourceSummary]) -> str:
    """The summary table the demo prints."""
    rows = [[s.department_name, s.source_id, s.channel, str(s.batches), str(s.rows_received), str(s.rows_accepted),
             str(s.rows_quarantined), s.status] for s in summaries]
    return render_table(["department 部门", "source 数据源", "channel 渠道", "batches", "received", "accepted",
                         "quarantined", "status"], rows, numeric={3, 4, 5, 6})
