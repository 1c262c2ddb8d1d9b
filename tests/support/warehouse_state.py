"""The warehouse's landed state as plain rows, to compare a replay with the first delivery.

Times of day (when a row was loaded, validated, published; how long it took) differ between
two landings of the same batch and are left out; everything else — the rows with their row
numbers and references, the quarantined rows with their reasons, the ledger rows with their
counts, statuses, warnings and delivery times — must be the same.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

#: The ledger's columns that describe a batch (not when or how fast it went through).
LEDGER_COLUMNS = ("load_id", "source_id", "department", "dataset", "channel", "reference", "sha256", "bytes",
                  "archive_path", "status", "rows_received", "rows_accepted", "rows_quarantined", "error",
                  "warnings", "data_date", "received_at")


def landed_state(conn: psycopg.Connection, datasets: list[str]) -> dict[str, list[tuple]]:
    """raw (per dataset, without ``_loaded_at``), ``quarantine.rows`` and ``ops.loads``, each sorted."""
    state: dict[str, list[tuple]] = {}
    for dataset in datasets:
        columns = [row[0] for row in conn.execute(
            "select column_name from information_schema.columns where table_schema = 'raw' and table_name = %s"
            " and column_name <> '_loaded_at' order by column_name", (dataset,))]
        state[f"raw.{dataset}"] = conn.execute(sql.SQL("select {} from {} order by _load_id, _row_no").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier("raw", dataset))).fetchall()
    state["quarantine.rows"] = conn.execute(
        "select load_id, row_no, dataset, violations, reasons from quarantine.rows order by load_id, row_no").fetchall()
    state["ops.loads"] = conn.execute(sql.SQL("select {} from ops.loads order by load_id").format(
        sql.SQL(", ").join(map(sql.Identifier, LEDGER_COLUMNS)))).fetchall()
    return state


def empty_warehouse(conn: psycopg.Connection, datasets: list[str]) -> None:
    """What a warehouse restored from nothing holds: no raw rows, no quarantine, no ledger (as its owner)."""
    for dataset in datasets:
        conn.execute(sql.SQL("truncate {}").format(sql.Identifier("raw", dataset)))
    conn.execute("truncate quarantine.rows, ops.loads cascade")
    conn.commit()


def differences(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> list[str]:
    """What differs between two :func:`landed_state` results, row by row (empty when they are the same)."""
    found = []
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table, []), after.get(table, [])
        if len(old) != len(new):
            found.append(f"{table}: {len(old)} rows before, {len(new)} after")
        found += [f"{table}: {a!r} != {b!r}" for a, b in zip(old, new, strict=False) if a != b][:5]
    return found
