"""The province's backflow (省回流) as the warehouse holds it: what came back, what it added, where it went.

The backflow takes the platform's ordinary paths; this module only reports on them:

* the province is a department of origin 省回流 (``config/departments/province.yaml``) with a source per
  dataset (行政处罚, 行政许可) reading the provincial platform's REST interface (or a file drop) under a
  双公示 item set (``config/item_sets/``), national codes decoded at landing (``config/item_sets/codes/``);
  its batches land with that origin (``ops.loads.origin``, migration 191) and are validated with the
  same rules as any department's (a decision a city department published is no conflict);
* the credit models keep a decision a city department also sent as one record, the city's, of origin
  本地; a decision only the province sent is a record of origin 省回流
  (``dbt_project/macros/credit_records.sql``: ``city_first_versions``);
* the outbox never queues a 省回流 record at a target with ``forward_backflow: false`` — the province
  it came from — and queues it at the city credit platform like any record (:mod:`huiju.push.outbox`).

:func:`backflow_report` says, per backflow source (and per day its batches arrived, Asia/Shanghai):
batches and rows received, rows quarantined, decisions that were already the city's own, decisions that
are records of origin 省回流, and how many of those each push target was due (the province: none). It
reads what the push component's role may: the ledger (``ops.loads``), the outbox, and dbt's
``credit.credit_backflow_versions`` — decision numbers, sources and batches of the backflow with the
origin of each decision's credit record, no party data — never staging.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import psycopg

from huiju.push.targets import PushTargets
from huiju.registry import ORIGIN_BACKFLOW, ORIGIN_LOCAL, Registry, Source
from huiju.summary import render_table

#: The backflow's versions and the origin of each decision's credit record (dbt; readable by the push role).
VERSIONS = "credit.credit_backflow_versions"
#: The day a batch arrived, in the platform's business zone.
_RECEIVED_DAY = "(received_at at time zone 'Asia/Shanghai')::date"


def backflow_report(conn: psycopg.Connection, registry: Registry, targets: PushTargets, *, by_day: bool = False,
                    start: date | None = None, end: date | None = None) -> list[dict[str, Any]]:
    """One row per backflow source (see the module docstring), or with ``by_day`` per source and day its batches
    arrived, between ``start`` and ``end`` when given; ``forwarded`` maps each target to its count.

    A decision counts once per row: one that came back on two days counts on each of those days.
    """
    sources = [s for s in registry.sources.values() if s.origin == ORIGIN_BACKFLOW]
    if not sources:
        return []
    window = {"sources": [s.id for s in sources], "by_day": by_day, "start": start, "end": end}
    rows: dict[tuple[str, date | None], dict[str, Any]] = {}

    def row(source_id: str, day: date | None) -> dict[str, Any]:
        return rows.setdefault((source_id, day), {
            "source": source_id, "day": day, "batches": 0, "received": 0, "quarantined": 0, "city_own": 0,
            "backflow_records": 0, "forwarded": dict.fromkeys(targets.targets, 0)})

    for source_id, day, batches, received, quarantined in conn.execute(
            f"select source_id, case when %(by_day)s then {_RECEIVED_DAY} end as day, count(*),"
            " coalesce(sum(rows_received), 0), coalesce(sum(rows_quarantined), 0) from ops.loads"
            " where source_id = any(%(sources)s) and status = 'published'"
            f" and (%(start)s::date is null or {_RECEIVED_DAY} >= %(start)s)"
            f" and (%(end)s::date is null or {_RECEIVED_DAY} <= %(end)s) group by 1, 2", window):
        row(source_id, day).update(batches=batches, received=received, quarantined=quarantined)
    # Before the warehouse's first build there is no credit layer: what the ledger says only.
    if conn.execute("select to_regclass(%s)", (VERSIONS,)).fetchone() != (None,):
        _add_decisions(conn, sources, targets, window, row)
    if not by_day:  # every source, also one nothing came back from yet
        for source in sources:
            row(source.id, None)
    return [rows[key] for key in sorted(rows, key=lambda key: (key[0], key[1] or date.min))]


def _add_decisions(conn: psycopg.Connection, sources: list[Source], targets: PushTargets, window: dict[str, Any],
                   row: Callable[[str, date | None], dict[str, Any]]) -> None:
    """Per source (and day): the city's own decisions, the 省回流 records, and how many each target was due."""
    for source_id, day, city_own, added in conn.execute(
            "select source_id, case when %(by_day)s then received_date end as day,"
            " count(distinct decision_no) filter (where record_origin = %(local)s),"
            " count(distinct decision_no) filter (where record_origin = %(backflow)s)"
            f" from {VERSIONS} where source_id = any(%(sources)s)"
            " and (%(start)s::date is null or received_date >= %(start)s)"
            " and (%(end)s::date is null or received_date <= %(end)s) group by 1, 2",
            {**window, "local": ORIGIN_LOCAL, "backflow": ORIGIN_BACKFLOW}):
        row(source_id, day).update(city_own=city_own, backflow_records=added)
    for source in sources:
        for target in targets.targets.values():
            relations = [r for r in target.relations if r.dataset == source.dataset]
            if not relations:
                continue
            for day, forwarded in conn.execute(
                    "select case when %(by_day)s then v.received_date end as day, count(distinct o.record_key)"
                    f" from {VERSIONS} v join ops.push_outbox o on o.target = %(target)s"
                    " and o.record_key = %(item_set)s || ':' || v.decision_no"
                    " where v.source_id = %(source)s and v.record_origin = %(backflow)s"
                    " and o.relation = any(%(relations)s) and o.action = 'upsert'"
                    " and (%(start)s::date is null or v.received_date >= %(start)s)"
                    " and (%(end)s::date is null or v.received_date <= %(end)s) group by 1",
                    {**window, "target": target.target, "item_set": relations[0].item_set, "source": source.id,
                     "backflow": ORIGIN_BACKFLOW, "relations": [r.name for r in relations]}):
                row(source.id, day)["forwarded"][target.target] = forwarded


def render_backflow(rows: list[dict[str, Any]]) -> str:
    """The backflow report as a table: one row per source (and day), a column per target it was forwarded to."""
    targets = sorted({name for row in rows for name in row["forwarded"]})
    by_day = any(row["day"] is not None for row in rows)
    header = ["source", *(["day"] if by_day else []), "batches", "received", "quarantined", "city's own (本地)",
              "records 省回流", *(f"→ {name}" for name in targets)]
    body = [[row["source"], *([str(row["day"])] if by_day else []), str(row["batches"]), str(row["received"]),
             str(row["quarantined"]), str(row["city_own"]), str(row["backflow_records"]),
             *(str(row["forwarded"][n]) for n in targets)] for row in rows]
    return render_table(header, body, numeric=set(range(2 if by_day else 1, len(header))))
