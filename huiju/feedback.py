"""问题数据反馈: the workbook that sends a batch's problem rows back to the department that sent them.

One workbook per department per batch, in the department's own terms: its own column
headers (from the source's column mapping) in its own order, its own row numbers, the
values exactly as it sent them (read from ``raw``, never the masked quarantine copy), the
cells that broke a rule filled in red, a 原因 column with every reason, and a 汇总 sheet.

What goes in is only what the department itself sent: no other source's data, no value the
platform derived (a duplicate published by another department is named by the rule, not by
that department's record). Every exported text that a spreadsheet would evaluate (starting
with ``= + - @``, a tab or a carriage return) is prefixed with ``'`` so it stays text.

Delivery goes back through the channel the department used: the workbook is always written
to ``var/outbox/<source_id>/<file>_问题数据反馈.xlsx``; for the inbox channel that folder is
the delivery, for SFTP it is uploaded into the department's outbox directory on its server, and for
the portal and every other channel the department downloads it from the portal (its 报送记录, logged
in, its own batches only). The notice (:mod:`huiju.notices`, e-mail and DingTalk) carries a link to
the batch's portal page, never the workbook: it holds the IDs and mobiles the department sent.
Each delivery is recorded in ``ops.feedback`` with its channel.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from psycopg import sql
from psycopg.rows import dict_row

from huiju.channels import FILE_CHANNELS
from huiju.ledger import get_load
from huiju.notices import queue_feedback_notice
from huiju.private_files import private_output
from huiju.registry import Registry, Source
from huiju.rules import problem_name
from huiju.settings import get_settings

log = logging.getLogger(__name__)

PROBLEM_FILL = PatternFill(fill_type="solid", start_color="FFFFC7CE", end_color="FFFFC7CE")
HEADER_FILL = PatternFill(fill_type="solid", start_color="FFD9E1F2", end_color="FFD9E1F2")
ROW_HEADER = "原文件行号"
REASON_HEADER = "原因"
SUMMARY_SHEET = "汇总"
ROWS_SHEET = "问题数据"
_UNSAFE_NAME = re.compile(r"[^\w.\-（）()〔〕\[\]]+")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class FeedbackResult:
    """A feedback workbook written and recorded."""

    load_id: str
    path: Path
    rows: int
    channel: str


def neutralise(value: object) -> object:
    """A cell value that a spreadsheet will show, never evaluate: ``=1+1`` becomes ``'=1+1``."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def feedback_path(source_id: str, reference: str) -> Path:
    """Where the workbook for a batch named ``reference`` goes: ``var/outbox/<source>/<stem>_问题数据反馈.xlsx``.

    Characters that do not belong in a file name (``? & / :`` …) become ``_``.
    """
    stem = _UNSAFE_NAME.sub("_", Path(reference).stem).strip("._") or "batch"
    return get_settings().outbox_dir / source_id / f"{stem}_问题数据反馈.xlsx"


def local_workbook(source_id: str, recorded: str) -> Path:
    """The local copy of a feedback workbook, whatever channel it went back through.

    ``recorded`` is ``ops.feedback.path`` (a path under ``var/``, an attachment's name, or where it
    went on the department's server): every workbook is written to ``var/outbox/<source>/`` first
    (:func:`feedback_path`), and only its name is taken from ``recorded``.
    """
    return get_settings().outbox_dir / source_id / Path(recorded.replace("\\", "/")).name


def build_feedback(conn: psycopg.Connection, registry: Registry, load_id: str,
                   upload: Callable[[Path], str] | None = None) -> FeedbackResult | None:
    """Write, deliver and record the feedback workbook of one batch; None when it has no problem rows.

    Delivery goes back the way the department sent the batch: inbox → the outbox folder; portal →
    the same folder, from which the portal serves it to the department;
    SFTP → ``upload(path)`` (returns where it went on the department's server; given by the
    caller, which holds the connection); any other channel, or SFTP without ``upload`` → the
    portal (recorded as channel ``portal``). The department is told through a notice with the
    link to the batch's portal page (:mod:`huiju.notices`) in every case; nothing is attached.
    Idempotent: the workbook is rewritten, its ``ops.feedback`` row updated and the notice queued once.
    """
    load = get_load(conn, load_id)
    if load is None:
        raise KeyError(f"no load {load_id!r} in the ledger")
    source = registry.source(load.source_id)
    dataset = registry.dataset_of(source)
    headers = list(source.columns)  # the department's own headers, in the order its mapping lists them
    fields = [source.columns[h] for h in headers]
    rows = department_rows(conn, dataset.dataset, fields, sql.SQL(
        "select row_no, violations, reasons, load_id from quarantine.rows where load_id = %s"), (load_id,))
    if not rows:
        return None
    department = registry.departments[source.department]
    # A file keeps its name; a page or an extract (REST, SOAP, database) is named by source and day.
    name = (load.reference if source.channel in FILE_CHANNELS
            else f"{source.id}_{(load.data_date or load.received_at).strftime('%Y%m%d')}_{load.load_id[-6:]}")
    path = feedback_path(source.id, name)

    held = load.status == "held"
    received = load.rows_received or 0

    def summary_rows(by_rule: Counter[str]) -> list[list[object]]:
        return [
            ["问题数据反馈"],
            [],
            ["报送单位", department.name],
            ["数据项", f"{source.title}（{dataset.title}）"],
            ["报送文件", load.reference],
            ["批次编号", load.load_id],
            ["收到行数", received],
            ["问题行数", len(rows)],
            ["通过行数", received - len(rows)],
            ["处理结果", (f"问题数据比例超过{source.tolerance:.0%}，本批次暂缓入库，全部数据均未公示；"
                          "请修正后整批重新报送。") if held else
             "其余数据已入库；请只修正下列问题数据后重新报送。"],
            ["说明", f"「{ROWS_SHEET}」表列出每一行问题数据：行号为原文件中的行号，红色单元格为有问题的值，"
                     f"「{REASON_HEADER}」列说明原因。"],
            [],
            ["问题类型", "行数"],
            *([problem_name(rule), count] for rule, count in by_rule.most_common()),
        ]

    write_problem_workbook(path, headers, fields, rows, summary_rows)

    relative = path.relative_to(get_settings().var) if path.is_relative_to(get_settings().var) else path
    channel, delivered_to = _deliver(source, path, upload)
    conn.execute(
        "insert into ops.feedback (load_id, path, rows, channel) values (%s, %s, %s, %s)"
        " on conflict (load_id, channel) do update set path = excluded.path, rows = excluded.rows,"
        " delivered_at = now()", (load_id, delivered_to if channel == "sftp" else str(relative), len(rows), channel))
    # The department hears about it once, with the portal link (never the workbook itself).
    queue_feedback_notice(conn, registry, load_id, path, len(rows),
                          delivered_to=_where_text(channel, source.id, delivered_to))
    conn.commit()
    log.info("%s: feedback for %s: %d problem rows → %s", source.id, load_id, len(rows), relative)
    return FeedbackResult(load_id, path, len(rows), channel)


def department_rows(conn: psycopg.Connection, dataset: str, fields: list[str], problems: sql.Composable,
                    params: tuple[object, ...]) -> list[dict[str, Any]]:
    """Problem rows with the values the department sent (from ``raw``), in its row order.

    ``problems`` is a query of ``row_no, violations, reasons, load_id`` and any columns of its own
    (quarantine, or a platform's rejections), all kept; ``landed`` is false for a row that never reached
    ``raw`` (a ragged line).
    """
    field_columns = sql.SQL(", ").join(sql.SQL("r.{f}").format(f=sql.Identifier(f)) for f in fields)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.SQL(
            "select q.*, r._row_no is not null as landed, {fields}"
            " from ({problems}) q left join {table} r on r._load_id = q.load_id and r._row_no = q.row_no"
            " order by q.row_no").format(fields=field_columns, problems=problems,
                                         table=sql.Identifier("raw", dataset)), params).fetchall()


def write_problem_workbook(path: Path, headers: list[str], fields: list[str], rows: list[dict[str, Any]],
                           summary_rows: Callable[[Counter[str]], list[list[object]]]) -> None:
    """Write a 问题数据反馈 workbook: the rows in the department's own columns, bad cells red, and a 汇总 sheet.

    ``summary_rows`` makes the 汇总 sheet's lines from the count of problems by rule.
    """
    workbook = Workbook()
    summary = workbook.active
    summary.title = SUMMARY_SHEET
    sheet = workbook.create_sheet(ROWS_SHEET)
    sheet.append([ROW_HEADER, *headers, REASON_HEADER])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
    column_of = {field: index + 2 for index, field in enumerate(fields)}  # 1-based; column 1 is the row number
    by_rule: Counter[str] = Counter()
    for out_row, row in enumerate(rows, start=2):
        # A row rejected at landing (a ragged line) never reached raw: its reason says what to fix.
        values = [row[f] for f in fields] if row["landed"] else [None] * len(fields)
        sheet.append([row["row_no"], *(neutralise(v) for v in values), neutralise(row["reasons"])])
        for violation in row["violations"]:
            by_rule[violation.get("rule") or "columns"] += 1
            for field in (violation.get("field"), violation.get("also")):
                if field in column_of:
                    sheet.cell(row=out_row, column=column_of[field]).fill = PROBLEM_FILL
        sheet.cell(row=out_row, column=len(headers) + 2).alignment = Alignment(wrap_text=True)
    for index, header in enumerate([ROW_HEADER, *headers, REASON_HEADER], start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(60, max(10, len(header) * 2 + 4))
    sheet.column_dimensions[get_column_letter(len(headers) + 2)].width = 80
    sheet.freeze_panes = "B2"

    for values in summary_rows(by_rule):
        summary.append([neutralise(v) for v in values])
    summary["A1"].font = Font(bold=True, size=14)
    summary.column_dimensions["A"].width = 16
    summary.column_dimensions["B"].width = 90
    with private_output(path) as out:  # 0600 in a 0700 folder; a reader never sees half a workbook
        workbook.save(out)


def _deliver(source: Source, path: Path, upload: Callable[[Path], str] | None) -> tuple[str, str]:
    """Send the workbook back through the source's channel; (channel recorded, where it went)."""
    if source.channel == "inbox":
        return "inbox", str(path)  # the outbox folder
    if source.channel == "sftp" and upload is not None:
        return "sftp", upload(path)
    return "portal", str(path)  # the portal serves it from the outbox folder to the department, logged in


def _where_text(channel: str, source_id: str, delivered_to: str) -> str:
    if channel == "inbox":
        return f"汇聚平台的反馈目录（outbox/{source_id}/）"
    if channel == "sftp":
        return f"贵单位SFTP服务器的目录 {delivered_to}"
    return ""  # the portal: the notice's link says where


def pending_feedback(conn: psycopg.Connection, source_id: str) -> list[str]:
    """The source's validated, held or published batches with problem rows and no feedback yet."""
    rows = conn.execute(
        "select l.load_id from ops.loads l where l.source_id = %s and l.status in ('validated', 'held', 'published')"
        " and exists (select 1 from quarantine.rows q where q.load_id = l.load_id)"
        " and not exists (select 1 from ops.feedback f where f.load_id = l.load_id)"
        " order by l.received_at, l.load_id", (source_id,)).fetchall()
    return [row[0] for row in rows]
