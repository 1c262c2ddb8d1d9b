"""A department's front-end database (前置库) for the demo, on the platform's own PostgreSQL server.

The demo must run on a machine with only Python, so the department's database is a database
of its own (``frontdb_<source>_<hash>``) on the server the warehouse lives on — the embedded
one by default — rather than MySQL or Oracle. Its table is filled from
:func:`huiju_demo.generate.generate_records` with an ``id`` key and an ``updated_at``
watermark that follow the generated order, so the rows the platform reads in (watermark, key)
order are numbered exactly as the manifest counts them (1-based positions).
"""

from __future__ import annotations

import zlib
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


def database_name(source: Source, workdir: Path) -> str:
    """One database per source and demo home, so parallel demos (tests) never share one."""
    return f"frontdb_{source.id}_{zlib.crc32(str(workdir.resolve()).encode()):08x}"


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
    server = warehouse.server_url()
    name = database_name(source, workdir)
    url = warehouse.ensure_database(server, name)
    with psycopg.connect(url) as conn:
        fill_table(conn, settings.table, list(source.columns), records, datetime.combine(day, FIRST_ENTRY),
                   schema=settings.table_schema or "public", key=settings.key_columns[0],
                   watermark=settings.watermark.column)
    try:
        yield SimulatedSource(submission=submission, connection_id=source.connection or f"huiju_{source.id}",
                              connection=connection_for(url))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
