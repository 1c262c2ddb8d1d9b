"""A department's front-end database (前置库) for the demo, on the platform's own PostgreSQL server.

The demo must run on a machine with only Python, so the department's database is a database
of its own (``<warehouse db>_frontdb_<source>``) on the server the warehouse lives on — the embedded
one by default — rather than MySQL or Oracle. It belongs to a role of its own, :data:`DEPARTMENT_ROLE`
(the department's account, with its own password; no right in the warehouse), which fills it and
which the platform's front-end database channel reads it as; the warehouse's bootstrap makes the
database and the role the first time (huiju.warehouse.side_database), and nothing here is the admin.
Its table is filled from
:func:`huiju_demo.generate.generate_records` with an ``id`` key and an ``updated_at``
watermark that follow the generated order, so the rows the platform reads in (watermark, key)
order are numbered exactly as the manifest counts them (1-based positions).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path

import psycopg
from huiju_demo.generate import generate_records
from huiju_demo.simulators import SimulatedSource
from psycopg import sql

from huiju import warehouse
from huiju.registry import Registry, Source

# The department's clerks enter the day's decisions from 09:00, one row every few seconds.
FIRST_ENTRY = time(9, 0)

#: The simulated departments' own database account (owner of their front-end databases, nothing else).
DEPARTMENT_ROLE = "huiju_demo_frontdb"


def fill_table(conn: psycopg.Connection, table: str, headers: Sequence[str], records: Sequence[dict[str, str]],
               start: datetime, *, schema: str = "public", step: timedelta = timedelta(seconds=1),
               key: str = "id", watermark: str = "updated_at") -> None:
    """(Re)create ``schema.table`` (an integer key, text columns, a timestamp watermark) holding ``records``."""
    target = sql.Identifier(schema, table)
    columns = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(h)) for h in headers)
    conn.execute(sql.SQL("drop table if exists {t}").format(t=target))
    conn.execute(sql.SQL("create table {t} ({key} bigint primary key, {columns}, {mark} timestamp not null)").format(
        t=target, key=sql.Identifier(key), columns=columns, mark=sql.Identifier(watermark)))
    copy_sql = sql.SQL("copy {t} ({key}, {names}, {mark}) from stdin").format(
        t=target, key=sql.Identifier(key), names=sql.SQL(", ").join(sql.Identifier(h) for h in headers),
        mark=sql.Identifier(watermark))
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for i, record in enumerate(records):
            copy.write_row([i + 1, *(record.get(h) or None for h in headers), start + i * step])
    conn.commit()


def database_suffix(source: Source) -> str:
    """The department's database is ``<warehouse db>_<this>``: one per source and warehouse, so parallel demos
    (tests, each on a warehouse of its own) never share one."""
    return f"frontdb_{source.id}"


def connection_for(url: str) -> dict:
    """The Airflow JSON connection reaching the database of ``url`` (a socket directory as host)."""
    params = warehouse.libpq_params(url)
    return {"conn_type": "postgres", "host": params["host"], "port": int(params["port"]),
            "login": params["user"], "password": params["password"], "schema": params["dbname"], "extra": {}}


@contextmanager
def simulate(registry: Registry, source: Source, day: date, rows: int, workdir: Path) -> Iterator[SimulatedSource]:
    """Fill the department's table with the day's rows; yield how to reach it; drop it afterwards."""
    settings = source.channel_settings
    if settings.dialect != "postgresql":
        raise ValueError(f"{source.id}: the demo simulates front-end databases on PostgreSQL only, "
                         f"not {settings.dialect}")
    records, submission = generate_records(registry, source, day, rows=rows)
    url = warehouse.side_database(database_suffix(source), DEPARTMENT_ROLE)
    schema = settings.table_schema or "public"
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        fill_table(conn, settings.table, list(source.columns), records, datetime.combine(day, FIRST_ENTRY),
                   schema=schema, key=settings.key_columns[0], watermark=settings.watermark.column)
    try:
        yield SimulatedSource(submission=submission, connection_id=source.connection or f"huiju_{source.id}",
                              connection=connection_for(url))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:  # the day's rows go; the database stays for the next run
            conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(schema, settings.table)))
