"""The province's backflow (省回流) as the warehouse holds it: what came back, what it added, where it went.

The backflow takes the platform's ordinary paths; this module only reports on them:

* the province is a department of origin 省回流 (``config/departments/province.yaml``) whose source reads
  the provincial platform's REST interface (or a file drop) under a 双公示 item set (``config/item_sets/``);
  its batches land with that origin (``ops.loads.origin``, migration 191) and are validated with the
  same rules as any department's (a decision a city department published is no conflict);
* the credit models keep a decision a city department also sent as one record, the city's, of origin
  本地; a decision only the province sent is a record of origin 省回流
  (``dbt_project/macros/credit_records.sql``: ``city_first_versions``);
* the outbox never queues a 省回流 record at a target with ``forward_backflow: false`` — the province
  it came from — and queues it at the city credit platform like any record (:mod:`huiju.push.outbox`).

:func:`backflow_report` says, per backflow source: batches and rows received, rows quarantined,
decisions that were already the city's own, records of origin 省回流 now in the credit layer, and
how many of those each push target was ever due (the province: none). It reads the ledger, staging,
the credit records and the outbox (the transformation's or a steward's view).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from huiju.push.targets import PushTargets
from huiju.registry import ORIGIN_BACKFLOW, ORIGIN_LOCAL, Registry
from huiju.summary import render_table

#: The 双公示 datasets a backflow can carry: the staging model of their versions and their credit records.
RECORDS = {"admin_penalty": ("stg_landing__admin_penalties", "credit_admin_penalty"),
           "admin_license": ("stg_landing__admin_licenses", "credit_admin_license")}


def backflow_report(conn: psycopg.Connection, registry: Registry, targets: PushTargets) -> list[dict[str, Any]]:
    """One row per backflow source (see the module docstring); ``forwarded`` maps each target to its count."""
    rows = []
    for source in registry.sources.values():
        if source.origin != ORIGIN_BACKFLOW or source.dataset not in RECORDS:
            continue
        staging, records = RECORDS[source.dataset]
        batches, received, quarantined = conn.execute(
            "select count(*), coalesce(sum(rows_received), 0), coalesce(sum(rows_quarantined), 0) from ops.loads"
            " where source_id = %s and status = 'published'", (source.id,)).fetchone()
        city_own, added = conn.execute(sql.SQL(
            "with sent as (select distinct decision_no from {staging} where source_id = %s)"
            " select count(*) filter (where r.origin = %s), count(*) filter (where r.origin = %s)"
            " from sent join {records} r using (decision_no)").format(
            staging=sql.Identifier("staging", staging), records=sql.Identifier("credit", records)),
            (source.id, ORIGIN_LOCAL, ORIGIN_BACKFLOW)).fetchone()
        forwarded = {}
        for target in targets.targets.values():
            relations = [r for r in target.relations if r.dataset == source.dataset]
            forwarded[target.target] = conn.execute(sql.SQL(
                "select count(distinct o.record_key) from ops.push_outbox o join {records} r"
                " on o.record_key = %s || ':' || r.decision_no and r.origin = %s"
                " where o.target = %s and o.relation = any(%s) and o.action = 'upsert'").format(
                records=sql.Identifier("credit", records)),
                (relations[0].item_set if relations else "", ORIGIN_BACKFLOW, target.target,
                 [r.name for r in relations])).fetchone()[0] if relations else 0
        rows.append({"source": source.id, "batches": batches, "received": received, "quarantined": quarantined,
                     "city_own": city_own, "backflow_records": added, "forwarded": forwarded})
    return rows


def render_backflow(rows: list[dict[str, Any]]) -> str:
    """The backflow report as a table: one row per source, a column per target it was forwarded to."""
    targets = sorted({name for row in rows for name in row["forwarded"]})
    header = ["source", "batches", "received", "quarantined", "city's own (本地)", "records 省回流",
              *(f"→ {name}" for name in targets)]
    body = [[row["source"], str(row["batches"]), str(row["received"]), str(row["quarantined"]),
             str(row["city_own"]), str(row["backflow_records"]), *(str(row["forwarded"][n]) for n in targets)]
            for row in rows]
    return render_table(header, body, numeric=set(range(1, len(header))))
