"""Values sent as national codes, decoded to their names in the batches just landed (:mod:`huiju.codes`).

A source delivering under a 双公示 item set (``item_set:``, the province's backflow) may send
行政相对人类别, 处罚类别 or 许可类别 as the national code (``1``/``01``) instead of the name. In the
landing's own transaction, after the ``COPY`` (whichever path it took: a page, a group of pages, a
file), the rows whose coded fields hold a digit are read back, decoded in Python by the code lists
of ``config/item_sets/codes/``, and written back as names — one ``UPDATE`` from arrays, touching only
those rows (a source of names costs one index look-up of nothing). A code no list holds stays as sent
and its row is quarantined with a reason naming source, batch and row (rule ``code``); validation adds
the rules' own verdicts to it. The payload as received stays in the archive, codes and all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from huiju.codes import decode
from huiju.registry import ORIGIN_BACKFLOW, CodeList, Registry, Source
from huiju.rules import RULES

log = logging.getLogger("huiju.landing")

CODE_RULE = RULES["code"]


@dataclass(frozen=True)
class CodedField:
    """A field of a source's dataset that may arrive coded: its code list, separator and the source's header."""

    name: str
    code_list: CodeList
    separator: str | None
    header: str


def coded_fields(registry: Registry, source: Source) -> tuple[CodedField, ...]:
    """The fields ``source`` may send as codes: those with a code list, when it is the province's backflow
    (省回流) under an item set. A city department's source is not decoded, also under an item set: a code
    there is a wrong value for its enumeration rule, and decoding read every landed batch a second time
    (``rest_200k``, a city source under sgs_v1: 0.68 → 0.34)."""
    if source.item_set is None or source.origin != ORIGIN_BACKFLOW:
        return ()
    dataset = registry.dataset_of(source)
    headers = source.header_for_field
    return tuple(CodedField(f.name, registry.code_lists[f.name], f.enum_separator, headers[f.name])
                 for f in dataset.fields if f.name in registry.code_lists and f.name in headers)


def decode_landed(conn: psycopg.Connection, registry: Registry, source: Source, load_ids: Sequence[str]) -> int:
    """Decode the coded values of ``source``'s batches ``load_ids`` in ``raw`` (call in the landing's
    transaction, after the ``COPY``); quarantine the rows holding a code no list has. Rows quarantined."""
    fields = coded_fields(registry, source)
    if not fields or not load_ids:
        return 0
    dataset = registry.dataset_of(source)
    table = sql.Identifier("raw", dataset.dataset)
    names = [f.name for f in fields]
    found = conn.execute(sql.SQL("select _load_id, _row_no, {columns} from {table} where _load_id = any(%s)"
                                 " and ({digits})").format(
        columns=sql.SQL(", ").join(map(sql.Identifier, names)), table=table,
        digits=sql.SQL(" or ").join(sql.SQL("{} ~ '[0-9]'").format(sql.Identifier(n)) for n in names)),
        (list(load_ids),)).fetchall()
    if not found:
        return 0
    updates: list[tuple[object, ...]] = []
    unknown: list[tuple[str, int, list[dict[str, object]]]] = []
    for load_id, row_no, *values in found:
        decoded_row: list[str | None] = []
        violations = []
        for field, value in zip(fields, values, strict=True):
            decoded = decode(field.code_list, value, field.separator) if value is not None else None
            decoded_row.append(decoded.value if decoded is not None else None)
            if decoded is not None and decoded.unknown:
                shown = "、".join(decoded.unknown)
                violations.append({
                    "field": field.name, "header": field.header, "rule": CODE_RULE.name, "problem": "unknown",
                    "value": shown, "reason": CODE_RULE.reason("unknown", source=source.id, load_id=load_id,
                                                               row=row_no, h=field.header, value=shown,
                                                               code_list=field.code_list.title)})
        if any(v is not None for v in decoded_row):
            updates.append((load_id, row_no, *decoded_row))
        if violations:
            unknown.append((load_id, row_no, violations))
    if updates:
        columns = list(zip(*updates, strict=True))
        conn.execute(sql.SQL("update {table} r set {assignments} from unnest(%s::text[], %s::int[], {arrays})"
                             " as v (load_id, row_no, {names}) where r._load_id = v.load_id and r._row_no = v.row_no"
                             ).format(
            table=table,
            assignments=sql.SQL(", ").join(sql.SQL("{c} = coalesce(v.{c}, r.{c})").format(c=sql.Identifier(n))
                                           for n in names),
            arrays=sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in names),
            names=sql.SQL(", ").join(map(sql.Identifier, names))), [list(c) for c in columns])
    if unknown:
        _quarantine(conn, dataset.dataset, unknown)
        log.warning("%s: %d rows hold a code no code list has (config/item_sets/codes/); quarantined: %s",
                    source.id, len(unknown), ", ".join(f"{load} row {row}" for load, row, _ in unknown[:10]))
    return len(unknown)


def _quarantine(conn: psycopg.Connection, dataset: str, rows: list[tuple[str, int, list[dict[str, object]]]]) -> None:
    """Quarantine landed rows for their unknown codes, beside any violation landing found in them already."""
    conn.execute(
        "insert into quarantine.rows (load_id, row_no, dataset, violations, reasons)"
        " select load_id, row_no, %s, violations::jsonb, reasons"
        " from unnest(%s::text[], %s::int[], %s::text[], %s::text[]) as q (load_id, row_no, violations, reasons)"
        " on conflict (load_id, row_no) do update set violations = quarantine.rows.violations || excluded.violations,"
        " reasons = quarantine.rows.reasons || '；' || excluded.reasons",
        (dataset, [r[0] for r in rows], [r[1] for r in rows],
         [json.dumps(v, ensure_ascii=False) for _, _, v in rows],
         ["；".join(str(x["reason"]) for x in v) for _, _, v in rows]))
