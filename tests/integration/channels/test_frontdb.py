"""Front-end database (前置库) channel against real servers on loopback: PostgreSQL and MariaDB.

PostgreSQL is the project's embedded server (a fresh database per test is the department's
front-end database, another the warehouse). MariaDB is the machine's server on 127.0.0.1:3306
(root, no password); without it its tests fail, with a message saying how to start it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import ssl
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from huiju_connectors import frontdb as connector
from psycopg import sql

from huiju import warehouse
from huiju.channels import CollectContext, ConnectionInfo
from huiju.channels import frontdb as channel
from huiju.channels.frontdb import exchange, watermark
from huiju.registry import Registry, load_registry

ROOT = Path(__file__).resolve().parents[3]
DAY = date(2026, 11, 20)
START = datetime(2026, 11, 20, 9, 0, 0)
COLUMNS = {"mc": "party_name", "lb": "party_type", "wsh": "decision_no", "cflb": "penalty_type",
           "jdrq": "decision_date", "cfjg": "authority"}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}


def _source(source_id: str, table: str, frontdb: dict) -> dict:
    return {"id": source_id, "title": "测试前置库", "dataset": "admin_penalty", "channel": "frontdb",
            "connection": f"huiju_{source_id}", "columns": COLUMNS,
            # The test servers on loopback speak no TLS: the opt-out is explicit, as in a real config.
            "frontdb": {"table": table, "tls": {"enabled": False}, **frontdb}}


WATERMARK = {"key_columns": ["id"], "mode": "watermark", "watermark": {"column": "updated_at", "type": "timestamp"}}
LOOKBACK = {**WATERMARK, "watermark": {**WATERMARK["watermark"], "lookback": 60}}
SOURCES = [
    _source("pg_wm", "penalties", {"dialect": "postgresql", "batch_size": 4, **WATERMARK}),
    _source("pg_kill", "penalties", {"dialect": "postgresql", "batch_size": 5, **WATERMARK}),
    _source("pg_int", "penalties", {"dialect": "postgresql", "batch_size": 3, "key_columns": ["id"],
                                    "mode": "watermark", "watermark": {"column": "id", "type": "integer"}}),
    _source("pg_flag", "penalties", {"dialect": "postgresql", "batch_size": 3, "key_columns": ["id"],
                                     "mode": "exchange_flag",
                                     "exchange_flag": {"column": "flag", "taken_at_column": "taken_at",
                                                       "reason_column": "reason"}}),
    _source("pg_snap", "penalties", {"dialect": "postgresql", "batch_size": 2, "key_columns": ["id"],
                                     "mode": "snapshot"}),
    _source("my_wm", "penalties", {"dialect": "mysql", "batch_size": 4, **WATERMARK}),
    _source("pg_lb", "penalties", {"dialect": "postgresql", "batch_size": 4, **LOOKBACK}),
    _source("my_lb", "penalties", {"dialect": "mysql", "batch_size": 4, **LOOKBACK}),
]


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config of its own: the real dataset, one test department with a source per case."""
    config = tmp_path_factory.mktemp("cfg") / "config"
    shutil.copytree(ROOT / "config" / "datasets", config / "datasets")
    (config / "departments").mkdir()
    department = {"department": {"code": "csj", "name": "测试局", "contacts": [
        {"name": "测试", "role": "数据专员", "email": "t@example.gov.cn", "phone": "13800000000"}]},
        "sources": SOURCES}
    (config / "departments" / "csj.yaml").write_text(json.dumps(department, ensure_ascii=False), encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def registry(config_dir: Path) -> Registry:
    return load_registry(config_dir)


@pytest.fixture
def wh(make_database) -> str:
    """A fresh migrated warehouse per test: cursors and ledgers never leak between cases."""
    return make_database("fwh", migrated=True)


@pytest.fixture
def front(make_database) -> str:
    """A fresh PostgreSQL database playing the department's front-end database."""
    return make_database("front")


def pg_info(url: str) -> ConnectionInfo:
    params = warehouse.libpq_params(url)
    return ConnectionInfo(conn_id="huiju_front", host=params["host"], port=int(params["port"]),
                          login=params["user"], password=params["password"], schema=params["dbname"])


def row(i: int, stamp: datetime | None = None, **overrides: object) -> dict:
    """One penalty row of the front-end table (id i)."""
    return {"id": i, "mc": f"示范公司{i}", "lb": "法人及非法人组织", "wsh": f"示人社罚〔2026〕{i}号",
            "cflb": "罚款", "jdrq": "2026-11-19", "cfjg": "示范市人力资源和社会保障局",
            "updated_at": stamp or START + timedelta(seconds=i), **overrides}


def pg_table(url: str, rows: list[dict], *, extra_ddl: str = "") -> None:
    with psycopg.connect(url) as conn:
        conn.execute("drop table if exists penalties")
        conn.execute("create table penalties (id bigint primary key, mc text, lb text, wsh text, cflb text,"
                     f" jdrq text, cfjg text, updated_at timestamp not null{extra_ddl})")
        pg_insert(conn, rows)


def pg_insert(conn: psycopg.Connection, rows: list[dict]) -> None:
    for r in rows:
        names = list(r)
        conn.execute(sql.SQL("insert into penalties ({}) values ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join(sql.Placeholder() * len(names))),
            list(r.values()))
    conn.commit()


def run(registry: Registry, wh: str, source_id: str, info: ConnectionInfo) -> list:
    with psycopg.connect(wh) as conn:
        ctx = CollectContext(registry=registry, source=registry.source(source_id), conn=conn, data_date=DAY,
                             connection=info)
        return channel.collect(ctx)


def landed(wh: str) -> list[tuple[int, datetime]]:
    """(id, updated_at) of every raw row, as kept in _extra."""
    with psycopg.connect(wh) as conn:
        if conn.execute("select to_regclass('raw.admin_penalty')").fetchone()[0] is None:
            return []  # killed before the first landing created the table
        rows = conn.execute("select (_extra->>'id')::bigint, (_extra->>'updated_at')::timestamp"
                            " from raw.admin_penalty order by 1, 2").fetchall()
    return [tuple(r) for r in rows]


def cursor_of(wh: str, source_id: str) -> dict | None:
    with psycopg.connect(wh) as conn:
        found = conn.execute("select position from ops.cursors where source_id = %s", (source_id,)).fetchone()
    return found[0] if found else None


# --- watermark ---------------------------------------------------------------------------------

def test_rows_with_the_stored_watermark_arriving_later_are_landed_once(registry, wh, front) -> None:
    same = START + timedelta(hours=1)
    pg_table(front, [row(i, same) for i in range(3, 9)])
    first = run(registry, wh, "pg_wm", pg_info(front))
    assert [r.rows_received for r in first] == [4, 2]
    assert cursor_of(wh, "pg_wm") == {"mode": "watermark", "column": "updated_at", "watermark": same.isoformat(),
                                      "keys": [8], "keys_at_watermark": [[3], [4], [5], [6], [7], [8]]}
    with psycopg.connect(front) as conn:  # between runs: rows stamped with the stored maximum, smaller keys too
        pg_insert(conn, [row(i, same) for i in (1, 2, 9, 10, 11)] + [row(12, same + timedelta(seconds=1))])
    second = run(registry, wh, "pg_wm", pg_info(front))
    assert sum(r.rows_received for r in second) == 6
    assert run(registry, wh, "pg_wm", pg_info(front)) == []
    ids = [i for i, _ in landed(wh)]
    assert ids == list(range(1, 13))


def test_naive_local_times_across_midnight_have_no_gap_or_overlap(registry, wh, front) -> None:
    """Asia/Shanghai wall-clock times, microseconds around midnight, late rows at the stored maximum."""
    midnight = datetime(2026, 11, 21)
    stamps = [midnight - timedelta(microseconds=1), midnight, midnight, midnight + timedelta(microseconds=1)]
    pg_table(front, [row(10 + n, stamp) for n, stamp in enumerate(stamps)])
    assert sum(r.rows_received for r in run(registry, wh, "pg_wm", pg_info(front))) == 4
    with psycopg.connect(front) as conn:
        pg_insert(conn, [row(1, midnight + timedelta(microseconds=1)), row(2, midnight + timedelta(seconds=1))])
    assert sum(r.rows_received for r in run(registry, wh, "pg_wm", pg_info(front))) == 2
    rows = landed(wh)
    assert sorted(rows) == sorted([(10 + n, s) for n, s in enumerate(stamps)]
                                  + [(1, midnight + timedelta(microseconds=1)), (2, midnight + timedelta(seconds=1))])


def test_rows_updated_during_a_paged_extract_are_neither_missed_nor_duplicated(registry, wh, front,
                                                                              monkeypatch) -> None:
    pg_table(front, [row(i) for i in range(1, 13)])

    def update(later: datetime) -> None:
        with psycopg.connect(front) as conn:
            conn.execute("update penalties set mc = mc || '（更正）', updated_at = %s where id in (2, 10)", (later,))
            conn.commit()

    assert_updates_during_the_extract_land_once(monkeypatch, registry, wh, "pg_wm", pg_info(front), update)


def assert_updates_during_the_extract_land_once(monkeypatch: pytest.MonkeyPatch, registry: Registry, wh: str,
                                                source_id: str, info: ConnectionInfo,
                                                update: Callable[[datetime], None]) -> None:
    """``update(later)`` changes rows 2 and 10 of the source's 12 (their names corrected, updated at ``later``)
    once the extract's first page has landed: one row already read, one not yet. That run and the next land
    every key, each version once, and both corrections."""
    real = watermark.land_records
    later = START + timedelta(hours=2)
    pages = []

    def land_then_update(*args, **kwargs):
        result = real(*args, **kwargs)
        pages.append(result)
        if len(pages) == 1:
            update(later)
        return result

    monkeypatch.setattr(watermark, "land_records", land_then_update)
    run(registry, wh, source_id, info)
    monkeypatch.setattr(watermark, "land_records", real)
    run(registry, wh, source_id, info)
    rows = landed(wh)
    assert len(rows) == len(set(rows)), "a (key, version) landed twice"
    latest = {i: max(t for j, t in rows if j == i) for i, _ in rows}
    assert set(latest) == set(range(1, 13))
    assert latest[2] == latest[10] == later
    with psycopg.connect(wh) as conn:
        fixed = conn.execute("select count(*) from raw.admin_penalty where party_name like '%（更正）'").fetchone()[0]
    assert fixed == 2


def test_an_integer_watermark_reads_only_new_ids(registry, wh, front) -> None:
    pg_table(front, [row(i) for i in range(1, 6)])
    assert sum(r.rows_received for r in run(registry, wh, "pg_int", pg_info(front))) == 5
    with psycopg.connect(front) as conn:
        pg_insert(conn, [row(i) for i in range(6, 9)])
    assert sum(r.rows_received for r in run(registry, wh, "pg_int", pg_info(front))) == 3
    assert cursor_of(wh, "pg_int")["watermark"] == 8


def test_row_numbers_continue_across_batches(registry, wh, front) -> None:
    pg_table(front, [row(i) for i in range(1, 10)])
    run(registry, wh, "pg_wm", pg_info(front))
    with psycopg.connect(wh) as conn:
        numbered = conn.execute("select _row_no, (_extra->>'id')::int from raw.admin_penalty").fetchall()
    assert all(n == i for n, i in numbered)


def test_a_landing_failing_mid_copy_leaves_nothing_and_the_rerun_lands_every_row(registry, wh, front,
                                                                                 monkeypatch) -> None:
    """The source's COPY is read by a thread: a landing that fails mid-batch must stop it cleanly."""
    pg_table(front, [row(i, mc="示" * 40_000) for i in range(1, 10)])  # a batch is several blocks
    real = watermark.land_records
    calls = {"n": 0}

    def fail_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            next(iter(kwargs["chunks"]))  # the reader thread is running when the landing fails
            raise RuntimeError("warehouse went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(watermark, "land_records", fail_on_second)
    with pytest.raises(RuntimeError, match="warehouse went away"):
        run(registry, wh, "pg_wm", pg_info(front))
    monkeypatch.setattr(watermark, "land_records", real)
    assert [i for i, _ in landed(wh)] == [1, 2, 3, 4]
    run(registry, wh, "pg_wm", pg_info(front))
    assert [i for i, _ in landed(wh)] == list(range(1, 10))


# --- SIGKILL at random points ------------------------------------------------------------------

def _child(registry: Registry, wh: str, source_id: str, info: ConnectionInfo) -> None:
    """The forked extract: its own connections, nothing inherited but the loaded modules."""
    run(registry, wh, source_id, info)


def kill_rounds(registry: Registry, wh: str, source_id: str, info: ConnectionInfo, kills_wanted: int,
                change: Callable[[int], None], check: Callable[[], None], horizon: float = 0.4) -> int:
    """Fork collect, SIGKILL it at a random instant, check, change the source; repeat; return the kills.

    A fork (not a fresh interpreter) starts extracting at once, so the kill points spread over
    the extract itself. The window adapts: a child that finished before its kill narrows it, a
    kill before anything landed widens it.
    """
    import multiprocessing

    fork = multiprocessing.get_context("fork")
    rng = random.Random(20261120)  # reproducible kill points
    kills, rounds = 0, 0
    progress: list[int] = []
    # Rounds whose child finished before its kill do not count: allow enough rounds to reach the kills.
    while kills < kills_wanted and rounds < kills_wanted * 4:
        before = len(landed(wh))
        child = fork.Process(target=_child, args=(registry, wh, source_id, info))
        child.start()
        time.sleep(rng.uniform(0.0, horizon))
        if child.is_alive():
            os.kill(child.pid, signal.SIGKILL)
            kills += 1
        child.join()
        after = len(landed(wh))
        if child.exitcode != -signal.SIGKILL:
            assert child.exitcode == 0, f"the extract failed (exit code {child.exitcode})"
            horizon *= 0.7
        elif after == before:
            horizon *= 1.3
        progress.append(after - before)
        check()
        change(rounds)
        rounds += 1
    # The kills must have hit mid-extract, not only before it started: batches landed between kills.
    assert sum(1 for n in progress if n) >= len(progress) // 3, progress
    return kills


def _check_watermark_behind_data(wh: str, source_id: str) -> None:
    """Every landed (key, version) once, and the cursor equal to the greatest landed pair."""
    rows = landed(wh)
    assert len(rows) == len(set(rows)), "duplicates after a kill"
    position = cursor_of(wh, source_id)
    if position is None:
        return
    greatest = max((t, i) for i, t in rows)
    assert (datetime.fromisoformat(position["watermark"]), position["keys"][0]) == greatest


def test_sigkill_at_random_points_then_rerun_lands_every_row_once(registry, wh, front) -> None:
    pg_table(front, [row(i) for i in range(1, 201)])
    info = pg_info(front)
    next_id = [201]

    def change(n: int) -> None:
        with psycopg.connect(front) as conn:
            stamp = conn.execute("select max(updated_at) from penalties").fetchone()[0]
            # new rows sharing the current maximum watermark, and an update of an old row
            pg_insert(conn, [row(next_id[0] + k, stamp) for k in range(3)])
            conn.execute("update penalties set updated_at = %s where id = %s",
                         (stamp + timedelta(seconds=1), 1 + n * 7))
            conn.commit()
        next_id[0] += 3

    kills = kill_rounds(registry, wh, "pg_kill", info, 20, change,
                        lambda: _check_watermark_behind_data(wh, "pg_kill"))
    assert kills >= 20
    run(registry, wh, "pg_kill", info)
    _check_watermark_behind_data(wh, "pg_kill")
    with psycopg.connect(front) as conn:
        source_rows = {tuple(r) for r in conn.execute("select id, updated_at from penalties")}
    rows = landed(wh)
    assert {i for i, _ in rows} == {i for i, _ in source_rows}
    assert source_rows <= set(rows)  # every current version is there
    assert len(rows) == len(set(rows))


# --- exchange flag -----------------------------------------------------------------------------

def test_exchange_flag_write_back_after_a_crash_lands_nothing_twice(registry, wh, front, monkeypatch) -> None:
    pg_table(front, [row(i) for i in range(1, 8)],
             extra_ddl=", flag text not null default '0', taken_at timestamp, reason text")
    calls = {"n": 0}
    real = exchange.acknowledge

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash between landing and write-back")
        return real(*args, **kwargs)

    monkeypatch.setattr(exchange, "acknowledge", crash_on_second)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(registry, wh, "pg_flag", pg_info(front))
    monkeypatch.setattr(exchange, "acknowledge", real)
    with psycopg.connect(front) as conn:
        flags = dict(conn.execute("select id, flag from penalties").fetchall())
    assert sorted(flags.values()) == ["0", "0", "0", "0", "1", "1", "1"]  # batch 2 landed, not yet acknowledged
    assert cursor_of(wh, "pg_flag")["owed"]["taken"] == [[4], [5], [6]]
    run(registry, wh, "pg_flag", pg_info(front))
    assert [i for i, _ in landed(wh)] == list(range(1, 8))
    with psycopg.connect(front) as conn:
        rows = conn.execute("select flag, taken_at is not null from penalties").fetchall()
    assert set(rows) == {("1", True)}
    assert cursor_of(wh, "pg_flag") == {"mode": "exchange_flag", "owed": None}
    assert run(registry, wh, "pg_flag", pg_info(front)) == []


# --- snapshot ----------------------------------------------------------------------------------

def test_snapshot_records_rows_deleted_at_the_source(registry, wh, front) -> None:
    pg_table(front, [row(i) for i in range(1, 6)])
    info = pg_info(front)
    assert sum(r.rows_received for r in run(registry, wh, "pg_snap", info)) == 5
    with psycopg.connect(front) as conn:
        conn.execute("delete from penalties where id in (2, 5)")
        conn.commit()
    run(registry, wh, "pg_snap", info)
    with psycopg.connect(wh) as conn:
        deleted = conn.execute("select key from ops.deletions where source_id = 'pg_snap' order by key").fetchall()
        loads = conn.execute("select count(*) from ops.loads where source_id = 'pg_snap'").fetchone()[0]
        withdrawn = conn.execute("select source_key, _row_no from ops.withdrawals w join raw.admin_penalty r"
                                 " on r._load_id = w.load_id and r._row_no = w.row_no order by 1").fetchall()
    assert [d[0] for d in deleted] == [[2], [5]]
    assert withdrawn == [([2], 2), ([5], 5)]  # the raw rows of the deleted records (key in _extra): withdrawn
    # Unchanged batches are recognised by content: run 2 landed only the batches that changed.
    assert run(registry, wh, "pg_snap", info)[0].outcome == "already_landed"
    with psycopg.connect(wh) as conn:
        assert conn.execute("select count(*) from ops.loads where source_id = 'pg_snap'").fetchone()[0] == loads
        assert conn.execute("select count(*) from ops.deletions").fetchone()[0] == 2


# --- schema drift ------------------------------------------------------------------------------

def test_a_new_column_lands_in_extra_and_warns(registry, wh, front) -> None:
    pg_table(front, [row(1)])
    run(registry, wh, "pg_wm", pg_info(front))
    with psycopg.connect(front) as conn:
        conn.execute("alter table penalties add column bz text")
        pg_insert(conn, [row(2, bz="新增备注")])
    results = run(registry, wh, "pg_wm", pg_info(front))
    assert any("bz" in w for w in results[0].warnings)
    with psycopg.connect(wh) as conn:
        extra = conn.execute("select _extra->>'bz' from raw.admin_penalty where _extra->>'id' = '2'").fetchone()[0]
        warnings = conn.execute("select warnings from ops.loads where load_id = %s",
                                (results[0].load_id,)).fetchone()[0]
    assert extra == "新增备注"
    assert any("bz" in w for w in warnings)


def test_a_missing_mapped_column_fails_the_batch_naming_it(registry, wh, front) -> None:
    pg_table(front, [row(1)])
    with psycopg.connect(front) as conn:
        conn.execute("alter table penalties drop column wsh")
        conn.commit()
    [result] = run(registry, wh, "pg_wm", pg_info(front))
    assert result.outcome == "failed" and "wsh" in (result.error or "")
    with psycopg.connect(wh) as conn:
        status, error = conn.execute("select status, error from ops.loads where load_id = %s",
                                     (result.load_id,)).fetchone()
        assert conn.execute("select count(*) from raw.admin_penalty").fetchone()[0] == 0
    assert status == "failed" and "wsh" in error


def test_a_type_change_is_reported(registry, wh, front) -> None:
    pg_table(front, [row(1)])
    run(registry, wh, "pg_wm", pg_info(front))
    with psycopg.connect(front) as conn:
        conn.execute("alter table penalties alter column jdrq type date using jdrq::date")
        pg_insert(conn, [row(2)])
    results = run(registry, wh, "pg_wm", pg_info(front))
    assert any("jdrq changed type from TEXT to DATE" in w for w in results[0].warnings)
    with psycopg.connect(wh) as conn:
        value = conn.execute("select decision_date from raw.admin_penalty where _extra->>'id' = '2'").fetchone()
    assert value is not None  # never cast to NULL


# --- connection safety ------------------------------------------------------------------------

def test_a_wrong_password_fails_at_once_as_a_configuration_error(registry, wh, mariadb, monkeypatch) -> None:
    # The embedded PostgreSQL trusts its socket, so the refused login is MariaDB's (error 1045).
    _, table = mariadb
    import pymysql.connections

    info = dataclasses.replace(my_info(), password="wrong-password")
    attempts = {"n": 0}
    real_connect = pymysql.connections.Connection.connect

    def counted(self, *args, **kwargs):  # the real login against the real server, counted
        attempts["n"] += 1
        return real_connect(self, *args, **kwargs)

    monkeypatch.setattr(pymysql.connections.Connection, "connect", counted)
    with pytest.raises(connector.FrontDbConfigError, match="login refused") as raised:
        run(my_registry(registry, table), wh, "my_wm", info)
    assert attempts["n"] == 1, "a refused login must not be retried (an account lock-out waits behind retries)"
    assert raised.value.retryable is False and "wrong-password" not in str(raised.value)


def test_dpy_3001_is_a_configuration_error_that_is_not_retried() -> None:
    import oracledb

    error = oracledb.DatabaseError(
        "DPY-3001: Native Network Encryption and Data Integrity is only supported in python-oracledb thick mode")
    mapped = connector.map_error(error, "rsj_penalty (oracle xzcf_share)")
    assert isinstance(mapped, connector.FrontDbConfigError)
    assert mapped.retryable is False
    assert "native network encryption" in str(mapped) and "rsj_penalty" in str(mapped)
    import sqlalchemy as sa

    wrapped = sa.exc.OperationalError("connect", {}, error)
    assert isinstance(connector.map_error(wrapped, "x"), connector.FrontDbConfigError)


def test_mysql_connections_never_allow_local_infile_and_verify_tls_by_default() -> None:
    endpoint = connector.Endpoint("mysql", "db.example.gov.cn", 3306, "u", "s3cret-pw", "qzk")
    args = connector.connect_args(endpoint)
    assert args["local_infile"] is False
    # TLS is on by default, and without a CA file the chain (system roots) and host name are still checked.
    assert args["ssl"].check_hostname is True and args["ssl"].verify_mode == ssl.CERT_REQUIRED
    unverified = connector.connect_args(dataclasses.replace(endpoint, tls=connector.Tls(verify=False)))
    assert unverified["ssl"].verify_mode == ssl.CERT_NONE
    assert "ssl" not in connector.connect_args(dataclasses.replace(endpoint, tls=connector.Tls(enabled=False)))
    pg = connector.connect_args(connector.Endpoint("postgresql", "h", 5432, "u", "p", "d",
                                                   tls=connector.Tls(enabled=True, ca_file="/ca.pem")))
    assert pg["sslmode"] == "verify-full" and pg["sslrootcert"] == "/ca.pem"
    assert "s3cret-pw" not in str(connector.engine_url(endpoint))  # the password is never in the URL's text


# --- Oracle SQL --------------------------------------------------------------------------------

def test_the_watermark_query_compiles_for_oracle() -> None:
    from sqlalchemy.dialects import oracle

    table = connector.source_table("xzcf_share", ["id", "xh", "cf_wsh", "updated_at"], "qzk")
    since = connector.watermark_query(table, "updated_at", ["id", "xh"], since=datetime(2026, 11, 20))
    since_text = " ".join(str(since.compile(dialect=oracle.dialect())).split())
    assert since_text.endswith("FROM qzk.xzcf_share WHERE qzk.xzcf_share.updated_at IS NOT NULL AND"
                               " qzk.xzcf_share.updated_at >= :updated_at_1"
                               " ORDER BY qzk.xzcf_share.updated_at, qzk.xzcf_share.id, qzk.xzcf_share.xh")
    query = connector.watermark_query(table, "updated_at", ["id", "xh"], after=[datetime(2026, 11, 20), 5, 1])
    text = " ".join(str(query.compile(dialect=oracle.dialect())).split())
    assert text.startswith("SELECT qzk.xzcf_share.id, qzk.xzcf_share.xh, qzk.xzcf_share.cf_wsh,")
    assert "FROM qzk.xzcf_share WHERE qzk.xzcf_share.updated_at IS NOT NULL AND" in text
    # lexicographic "after" without row values, which Oracle lacks
    assert ("(qzk.xzcf_share.updated_at > :updated_at_1 OR qzk.xzcf_share.updated_at = :updated_at_2 AND "
            "(qzk.xzcf_share.id > :id_1 OR qzk.xzcf_share.id = :id_2 AND qzk.xzcf_share.xh > :xh_1))") in text
    assert text.endswith("ORDER BY qzk.xzcf_share.updated_at, qzk.xzcf_share.id, qzk.xzcf_share.xh")
    flag = connector.flag_query(table, "cf_wsh", "0", ["id"], 500)
    flag_text = " ".join(str(flag.compile(dialect=oracle.dialect())).split())
    assert "FETCH FIRST __[POSTCOMPILE_param_1] ROWS ONLY" in flag_text or "ROWNUM" in flag_text
    url = connector.engine_url(connector.Endpoint("oracle", "db", 1521, "u", "p", "QZKPDB"))
    assert url.drivername == "oracle+oracledb" and url.query["service_name"] == "QZKPDB"


# --- encoding ------------------------------------------------------------------------------------

def test_gbk_read_through_latin1_is_recognised() -> None:
    hidden = "人社行政处罚".encode("gbk").decode("latin-1")
    assert connector.gbk_mojibake(hidden) == "人社行政处罚"
    cp1252 = "罚款".encode("gbk").decode("cp1252", errors="strict")  # MySQL's latin1 is cp1252
    assert connector.gbk_mojibake(cp1252) == "罚款"
    for fine in ("café", "Müller GmbH", "人社行政处罚", "plain ascii", "€ 5"):
        assert connector.gbk_mojibake(fine) is None


# --- MariaDB -------------------------------------------------------------------------------------

@pytest.fixture
def mariadb() -> Iterator:
    import pymysql

    try:
        conn = pymysql.connect(**MARIADB, connect_timeout=3, charset="utf8mb4", autocommit=True)
    except pymysql.err.OperationalError as exc:
        pytest.fail(f"MariaDB is required for these tests (127.0.0.1:3306, root, no password, database test): {exc}; "
                    "start it with `sudo service mariadb start` (or `mysqld_safe &`)")
    table = f"penalties_{os.getpid()}"
    with conn.cursor() as cur:
        cur.execute(f"drop table if exists {table}")
    yield conn, table
    with conn.cursor() as cur:
        cur.execute(f"drop table if exists {table}")
    conn.close()


def my_info() -> ConnectionInfo:
    return ConnectionInfo(conn_id="huiju_my", host=MARIADB["host"], port=MARIADB["port"], login=MARIADB["user"],
                          password=MARIADB["password"], schema=MARIADB["database"])


def my_registry(registry: Registry, table: str, source_ids: tuple[str, ...] = ("my_wm",)) -> Registry:
    """The MariaDB sources pointing at this process's table (tests may run side by side)."""
    sources = dict(registry.sources)
    for source_id in source_ids:
        source = registry.source(source_id)
        settings = source.channel_settings.model_copy(update={"table": table})
        sources[source_id] = source.model_copy(update={"channel_settings": settings})
    return registry.model_copy(update={"sources": sources})


def my_table(conn, table: str, rows: list[dict]) -> None:
    with conn.cursor() as cur:
        cur.execute(f"create table {table} (id bigint primary key, mc varchar(200) character set latin1,"
                    " lb varchar(50), wsh varchar(100), cflb varchar(20), jdrq varchar(20), cfjg varchar(100),"
                    " updated_at datetime not null) default charset utf8mb4")
        for r in rows:
            cur.execute(f"insert into {table} (id, mc, lb, wsh, cflb, jdrq, cfjg, updated_at)"
                        " values (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (r["id"], r["mc"], r["lb"], r["wsh"], r["cflb"], r["jdrq"], r["cfjg"], r["updated_at"]))


def test_mariadb_watermark_and_gbk_in_a_latin1_column_is_quarantined(registry, wh, mariadb) -> None:
    conn, table = mariadb
    registry = my_registry(registry, table)
    rows = [row(i, mc=f"Company {i}") for i in range(1, 7)]
    my_table(conn, table, rows)
    with conn.cursor() as cur:  # the department's loader wrote GBK bytes into the latin1 column
        cur.execute(f"update {table} set mc = _binary %s where id = 3", ("示范公司".encode("gbk"),))
    results = run(registry, wh, "my_wm", my_info())
    assert sum(r.rows_received for r in results) == 6
    assert [i for i, _ in landed(wh)] == [1, 2, 4, 5, 6]
    with psycopg.connect(wh) as pg:
        row_no, reasons = pg.execute("select row_no, reasons from quarantine.rows").fetchone()
    assert row_no == 3 and "GBK" in reasons and "「mc」" in reasons
    with conn.cursor() as cur:
        cur.execute(f"insert into {table} (id, mc, lb, wsh, cflb, jdrq, cfjg, updated_at) values"
                    " (7, 'c', 'l', 'w', 'f', 'j', 'a', %s)", (START + timedelta(seconds=6),))
    assert sum(r.rows_received for r in run(registry, wh, "my_wm", my_info())) == 1


@pytest.mark.parametrize("rendered", [False, True], ids=["rows", "rendered_by_the_source"])
def test_mariadb_sigkill_then_rerun(registry, wh, mariadb, rendered: bool) -> None:
    conn, table = mariadb
    # Large enough that an extract outlives a random kill on a quiet machine. A latin1 column
    # sends the rows through Python (the encoding check); without one MariaDB renders COPY text.
    make = my_utf8_table if rendered else my_table
    make(conn, table, [row(i, mc=f"Company {i}") for i in range(1, (20001 if rendered else 2001))])

    def change(n: int) -> None:
        # An update stamps the row later than every row there, as an application's now() does: the
        # 20,000-row table spans five and a half hours, so "+1 hour" could fall behind the stored
        # watermark, which no watermark scheme sees (the limit documented in huiju/channels/frontdb/).
        with conn.cursor() as cur:
            cur.execute(f"update {table} set updated_at = updated_at + interval 1 day where id = %s", (n + 1,))

    kills = kill_rounds(my_registry(registry, table), wh, "my_wm", my_info(), 5, change,
                        lambda: _check_watermark_behind_data(wh, "my_wm"), horizon=1.5)
    assert kills >= 5
    run(my_registry(registry, table), wh, "my_wm", my_info())
    _check_watermark_behind_data(wh, "my_wm")
    with conn.cursor() as cur:
        cur.execute(f"select id, updated_at from {table}")
        source_rows = {tuple(r) for r in cur.fetchall()}
    rows = landed(wh)
    assert {i for i, _ in rows} == {i for i, _ in source_rows} and source_rows <= set(rows)


def my_utf8_table(conn, table: str, rows: list[dict]) -> None:
    """A table the source renders as COPY text itself (no latin1 column): the fast path."""
    with conn.cursor() as cur:
        cur.execute(f"create table {table} (id bigint primary key, mc varchar(200), lb varchar(50),"
                    " wsh varchar(100), cflb varchar(20), jdrq date, cfjg text, amount decimal(10, 2),"
                    " updated_at datetime(6) not null) default charset utf8mb4")
        my_insert(conn, table, rows)


def my_insert(conn, table: str, rows: list[dict]) -> None:
    with conn.cursor() as cur:  # executemany sends one multi-row INSERT
        cur.executemany(f"insert into {table} (id, mc, lb, wsh, cflb, jdrq, cfjg, amount, updated_at)"
                        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [(r["id"], r["mc"], r["lb"], r["wsh"], r["cflb"], r["jdrq"], r["cfjg"], r.get("amount"),
                          r["updated_at"]) for r in rows])


def test_mariadb_rendered_rows_land_as_the_row_path_writes_them(registry, wh, mariadb) -> None:
    conn, table = mariadb
    registry = my_registry(registry, table)
    midnight = datetime(2026, 11, 21)
    rows = [row(1, midnight - timedelta(microseconds=1), mc="制表\t换行\n回车\r反斜杠\\结束", amount="0.50"),
            row(2, midnight, mc=None, cfjg="示范市\\N局"), row(3, midnight, amount="-12.00"),
            row(4, midnight + timedelta(microseconds=1))]
    my_utf8_table(conn, table, rows)
    results = run(registry, wh, "my_wm", my_info())
    assert [r.outcome for r in results] == ["landed"] and results[0].rows_received == 4
    with psycopg.connect(wh) as pg:
        got = pg.execute("select _row_no, _extra, party_name, decision_date, authority from raw.admin_penalty"
                         " order by _row_no").fetchall()
    assert [g[0] for g in got] == [1, 2, 3, 4]
    assert got[0][1] == {"id": 1, "amount": "0.50", "updated_at": "2026-11-20 23:59:59.999999"}
    assert got[1][1] == {"id": 2, "amount": None, "updated_at": "2026-11-21 00:00:00"}
    assert got[0][2] == "制表\t换行\n回车\r反斜杠\\结束" and got[1][2] is None
    assert got[1][4] == "示范市\\N局" and got[0][3] == "2026-11-19"
    assert cursor_of(wh, "my_wm")["keys_at_watermark"] == [[4]]
    # Late rows: the stored maximum with a smaller key, the one before it, midnight exactly.
    my_insert(conn, table, [row(0, midnight + timedelta(microseconds=1)), row(5, midnight + timedelta(seconds=1))])
    assert sum(r.rows_received for r in run(registry, wh, "my_wm", my_info())) == 2
    assert run(registry, wh, "my_wm", my_info()) == []
    assert [i for i, _ in landed(wh)] == [0, 1, 2, 3, 4, 5]
    assert cursor_of(wh, "my_wm")["watermark"] == "2026-11-21T00:00:01"


def test_mariadb_rows_with_the_stored_watermark_and_a_smaller_key_are_landed_once(registry, wh, mariadb) -> None:
    conn, table = mariadb
    registry = my_registry(registry, table)
    same = START + timedelta(hours=1)
    my_utf8_table(conn, table, [row(i, same) for i in range(5, 11)])
    assert [r.rows_received for r in run(registry, wh, "my_wm", my_info())] == [4, 2]
    my_insert(conn, table, [row(i, same) for i in (1, 2, 3, 11)])
    assert sum(r.rows_received for r in run(registry, wh, "my_wm", my_info())) == 4
    expected = [1, 2, 3, *range(5, 12)]
    assert [i for i, _ in landed(wh)] == expected
    assert sorted(cursor_of(wh, "my_wm")["keys_at_watermark"]) == [[i] for i in expected]


def test_mariadb_rows_updated_during_a_paged_extract_are_neither_missed_nor_duplicated(registry, wh, mariadb,
                                                                                      monkeypatch) -> None:
    conn, table = mariadb
    registry = my_registry(registry, table)
    my_utf8_table(conn, table, [row(i) for i in range(1, 13)])

    def update(later: datetime) -> None:
        with conn.cursor() as cur:
            cur.execute(f"update {table} set mc = concat(mc, '（更正）'), updated_at = %s where id in (2, 10)",
                        (later,))

    assert_updates_during_the_extract_land_once(monkeypatch, registry, wh, "my_wm", my_info(), update)


def test_mariadb_columns_the_source_cannot_render_exactly_go_through_python(registry, wh, mariadb) -> None:
    conn, table = mariadb
    registry = my_registry(registry, table)
    my_utf8_table(conn, table, [row(1), row(2)])
    with conn.cursor() as cur:
        cur.execute(f"alter table {table} add column score double")
        cur.execute(f"update {table} set score = 0.1 + id")
    engine = connector.create_source_engine(connector.Endpoint("mysql", MARIADB["host"], MARIADB["port"],
                                                               MARIADB["user"], MARIADB["password"],
                                                               MARIADB["database"], tls=connector.Tls(enabled=False)))
    with engine.connect() as src:
        columns = connector.mysql_columns(src, table, None)
    engine.dispose()
    assert connector.mysql_copy_select(table, None, columns, list(COLUMNS), "updated_at", ["id"], False) is None
    assert sum(r.rows_received for r in run(registry, wh, "my_wm", my_info())) == 2
    with psycopg.connect(wh) as pg:
        scores = [r[0] for r in pg.execute("select _extra->>'score' from raw.admin_penalty order by _row_no")]
    assert scores == ["1.1", "2.1"]  # Python's repr of the float, as the row path writes it


def test_a_cursor_saved_as_a_pair_is_upgraded_without_duplicates(registry, wh, front) -> None:
    same = START + timedelta(hours=1)
    pg_table(front, [row(i, same) for i in range(1, 7)])
    run(registry, wh, "pg_wm", pg_info(front))
    with psycopg.connect(wh) as conn:  # the cursor as an earlier version saved it
        conn.execute("update ops.cursors set position = %s where source_id = 'pg_wm'",
                     (json.dumps({"mode": "watermark", "column": "updated_at", "watermark": same.isoformat(),
                                  "keys": [6]}),))
    with psycopg.connect(front) as conn:
        pg_insert(conn, [row(7, same), row(8, same + timedelta(seconds=1))])
    assert sum(r.rows_received for r in run(registry, wh, "pg_wm", pg_info(front))) == 2
    assert [i for i, _ in landed(wh)] == list(range(1, 9))
    assert cursor_of(wh, "pg_wm")["keys_at_watermark"] == [[8]]


# --- archive and replay ------------------------------------------------------------------------

def _restore_and_compare(wh: str, registry: Registry) -> None:
    """Validate and publish what landed, then replay it into this warehouse and into an emptied one: same state."""
    from huiju.pipeline import publish_validated, validate_pending
    from huiju.replay import replay, select_manifests
    from tests.support.warehouse_state import differences, empty_warehouse, landed_state

    for source_id in registry.sources:
        validate_pending(source_id, registry)
        publish_validated(source_id)
    with psycopg.connect(wh) as conn:
        original = landed_state(conn, ["admin_penalty"])
    assert original["ops.loads"] and all(load[8] for load in original["ops.loads"])  # archive_path: never NULL
    assert {r.outcome for r in replay(select_manifests(since=date(2000, 1, 1)), registry)} == {"already_landed"}
    with psycopg.connect(wh) as conn:
        assert differences(original, landed_state(conn, ["admin_penalty"])) == []
        empty_warehouse(conn, ["admin_penalty"])
    restored = replay(select_manifests(since=date(2000, 1, 1)), registry)
    assert {r.outcome for r in restored} == {"landed"}
    with psycopg.connect(wh) as conn:
        assert differences(original, landed_state(conn, ["admin_penalty"])) == []


@pytest.fixture
def own_archive(wh: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test's warehouse for the core's own connections, and an archive of its own (a restore reads only it)."""
    from huiju.settings import get_settings

    monkeypatch.setenv("HUIJU_WAREHOUSE_URL", wh)
    monkeypatch.setenv("HUIJU_VAR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_extracts_are_archived_as_read_and_replay_rebuilds_them(registry, wh, front, own_archive) -> None:
    """Each mode's batches (COPY text from PostgreSQL, rows for exchange and snapshot) are archived and replayable."""
    pg_table(front, [row(i) for i in range(1, 10)],
             extra_ddl=", flag text not null default '0', taken_at timestamp, reason text")
    info = pg_info(front)
    assert sum(r.rows_received for r in run(registry, wh, "pg_wm", info)) == 9
    assert sum(r.rows_received for r in run(registry, wh, "pg_snap", info)) == 9
    assert sum(r.rows_received for r in run(registry, wh, "pg_flag", info)) == 9
    from huiju.archive import read_archived, read_rows_archive

    with psycopg.connect(wh) as conn:
        archived = dict(conn.execute("select source_id, archive_path from ops.loads order by load_id").fetchall())
    kind, body = read_rows_archive(read_archived(archived["pg_wm"]))
    assert kind == "copy" and body.count(b"\n") == 4  # the first batch of 4 rows, as the source rendered it
    assert read_rows_archive(read_archived(archived["pg_snap"]))[0] == "records"
    _restore_and_compare(wh, registry)


def test_mariadb_extracts_with_a_quarantined_row_replay_to_the_same_verdict(registry, wh, mariadb,
                                                                            own_archive) -> None:
    conn, table = mariadb
    registry = my_registry(registry, table)
    my_table(conn, table, [row(i, mc=f"Company {i}") for i in range(1, 7)])
    with conn.cursor() as cur:  # GBK bytes in the latin1 column: the row path, quarantined at landing
        cur.execute(f"update {table} set mc = _binary %s where id = 3", ("示范公司".encode("gbk"),))
    assert sum(r.rows_received for r in run(registry, wh, "my_wm", my_info())) == 6
    _restore_and_compare(wh, registry)


# --- late rows: the look-back window ------------------------------------------------------------

def _late_row_is_landed_once(registry: Registry, wh: str, source_id: str, info: ConnectionInfo,
                             write: Callable[[int, datetime], Callable[[], None]]) -> None:
    """Rows 1-4 land; a writer stamps row 5 (older) and holds its transaction while row 6 (newer) commits and a
    run lands it; row 5 commits after, below the stored watermark. ``write(id, stamp)`` inserts a row in a
    transaction of its own and returns the function that commits it."""
    assert sum(r.rows_received for r in run(registry, wh, source_id, info)) == 4
    commit_late = write(5, START + timedelta(seconds=10))
    write(6, START + timedelta(seconds=20))()
    assert sum(r.rows_received for r in run(registry, wh, source_id, info)) == 1  # row 6; row 5 not visible yet
    commit_late()
    run(registry, wh, source_id, info)
    assert run(registry, wh, source_id, info) == []


def _pg_writer(front: str) -> Callable[[int, datetime], Callable[[], None]]:
    def write(i: int, stamp: datetime) -> Callable[[], None]:
        conn = psycopg.connect(front)
        pg_insert_open(conn, row(i, stamp))

        def commit() -> None:
            conn.commit()
            conn.close()
        return commit
    return write


def pg_insert_open(conn: psycopg.Connection, values: dict) -> None:
    """Insert one row in the connection's open transaction (not committed)."""
    names = list(values)
    conn.execute(sql.SQL("insert into penalties ({}) values ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join(sql.Placeholder() * len(names))),
        list(values.values()))


def test_a_late_commit_below_the_watermark_is_missed_without_a_look_back(registry, wh, front) -> None:
    """The limit the look-back window removes, shown with the same concurrent writer."""
    pg_table(front, [row(i) for i in range(1, 5)])
    _late_row_is_landed_once(registry, wh, "pg_wm", pg_info(front), _pg_writer(front))
    assert [i for i, _ in landed(wh)] == [1, 2, 3, 4, 6]


def test_a_look_back_window_lands_a_late_commit_once_and_nothing_twice(registry, wh, front) -> None:
    pg_table(front, [row(i) for i in range(1, 5)])
    _late_row_is_landed_once(registry, wh, "pg_lb", pg_info(front), _pg_writer(front))
    assert [i for i, _ in landed(wh)] == [1, 2, 3, 4, 5, 6]
    recent = cursor_of(wh, "pg_lb")["recent"]
    assert sorted(json.loads(key)[0] for key in recent) == [1, 2, 3, 4, 5, 6]  # all within 60 s of the watermark
    with psycopg.connect(front) as conn:  # an update stamped below the watermark: a new version, landed once
        conn.execute("update penalties set mc = '更正公司', updated_at = %s where id = 2",
                     (START + timedelta(seconds=15),))
    assert sum(r.rows_received for r in run(registry, wh, "pg_lb", pg_info(front))) == 1
    assert run(registry, wh, "pg_lb", pg_info(front)) == []
    assert [i for i, _ in landed(wh)] == [1, 2, 2, 3, 4, 5, 6]


def test_mariadb_look_back_window_lands_a_late_commit_once(registry, wh, mariadb) -> None:
    import pymysql

    conn, table = mariadb
    registry = my_registry(registry, table, ("my_lb",))
    my_table(conn, table, [row(i, mc=f"Company {i}") for i in range(1, 5)])

    def write(i: int, stamp: datetime) -> Callable[[], None]:
        writer = pymysql.connect(**MARIADB, charset="utf8mb4", autocommit=False)
        r = row(i, stamp, mc=f"Company {i}")
        with writer.cursor() as cur:
            cur.execute(f"insert into {table} (id, mc, lb, wsh, cflb, jdrq, cfjg, updated_at)"
                        " values (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (r["id"], r["mc"], r["lb"], r["wsh"], r["cflb"], r["jdrq"], r["cfjg"], r["updated_at"]))

        def commit() -> None:
            writer.commit()
            writer.close()
        return commit

    _late_row_is_landed_once(registry, wh, "my_lb", my_info(), write)
    assert [i for i, _ in landed(wh)] == [1, 2, 3, 4, 5, 6]
