"""Records a department deletes at its front-end database (snapshot mode) leave the warehouse through the dbt build.

A front-end table of penalties (a fresh PostgreSQL database) is read in snapshot mode and built;
two of its records are then deleted at the source, the next snapshot finds them gone
(``ops.deletions``) and withdraws their raw rows (``ops.withdrawals``), and the next incremental
build takes them out of staging, the credit records and the publication views, and lists them in
``share.share_withdrawals`` for the push targets — as a full refresh does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
from huiju_demo.bulk import penalty_row
from psycopg import sql

from huiju import warehouse
from huiju.channels import CollectContext, ConnectionInfo
from huiju.channels import frontdb as channel
from huiju.ledger import loads_with_status, set_status
from huiju.registry import Registry, load_registry
from huiju.transform import run_dbt
from huiju.validation import publish_load
from huiju.warehouse import role_url

ROOT = Path(__file__).resolve().parents[2]
FIELDS = ("party_name", "party_type", "uscc", "legal_rep", "legal_rep_id_no", "decision_no", "penalty_type",
          "penalty_content", "fine_amount_wan", "decision_date", "publish_until", "authority", "authority_uscc")
WITHDRAWN = ("测罚〔2026〕W2号", "测罚〔2026〕W5号")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """A department whose penalties are read from its front-end table in snapshot mode (columns named as the fields)."""
    config = tmp_path_factory.mktemp("cfg") / "config"
    shutil.copytree(ROOT / "config" / "datasets", config / "datasets")
    (config / "departments").mkdir()
    source = {"id": "snap_penalty", "title": "前置库行政处罚", "dataset": "admin_penalty", "channel": "frontdb",
              "connection": "huiju_snap", "columns": {name: name for name in FIELDS},
              "frontdb": {"dialect": "postgresql", "table": "penalties", "tls": {"enabled": False},
                          "mode": "snapshot", "key_columns": ["decision_no"], "batch_size": 4}}
    department = {"department": {"code": "csj", "name": "测试局", "contacts": [
        {"name": "测试", "role": "数据专员", "email": "t@example.gov.cn", "phone": "13800000000"}]},
        "sources": [source]}
    (config / "departments" / "csj.yaml").write_text(json.dumps(department, ensure_ascii=False), encoding="utf-8")
    return load_registry(config)


def _collect_and_publish(url: str, front: str, registry: Registry) -> None:
    """One snapshot run, then its new batches marked validated and published (dbt reads published batches)."""
    params = warehouse.libpq_params(front)
    info = ConnectionInfo(conn_id="huiju_snap", host=params["host"], port=int(params["port"]), login=params["user"],
                          password=params["password"], schema=params["dbname"])
    with psycopg.connect(role_url("landing", url)) as conn:
        channel.collect(CollectContext(registry=registry, source=registry.source("snap_penalty"), conn=conn,
                                       connection=info))
    with psycopg.connect(role_url("validation", url)) as conn:
        for load_id in loads_with_status(conn, "snap_penalty", "received"):
            with conn.transaction():
                received = conn.execute("select rows_received from ops.loads where load_id = %s",
                                        (load_id,)).fetchone()[0]
                set_status(conn, load_id, "validated", rows_accepted=received, rows_quarantined=0)
            assert publish_load(conn, load_id)


def _decisions(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as conn:
        return {relation: {row[0] for row in conn.execute(sql.SQL("select decision_no from {}").format(
                    sql.Identifier(*relation.split("."))))}
                for relation in ("staging.stg_landing__admin_penalties", "credit.credit_admin_penalty",
                                 "credit.credit_legal_person_penalty",
                                 "share.share_legal_person_penalty_publication")}


def test_records_deleted_at_the_source_leave_staging_credit_and_share(make_database, registry: Registry,
                                                                     tmp_path: Path) -> None:
    url = make_database("withdraw")
    warehouse.migrate(url)
    front = make_database("withdraw_front")
    scjgj = load_registry().source("scjgj_penalty")
    rows = [{scjgj.columns[header]: value for header, value in penalty_row(scjgj, i, "W").items()}
            for i in range(1, 9)]
    with psycopg.connect(front) as conn:
        conn.execute(sql.SQL("create table penalties ({})").format(
            sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(name)) for name in FIELDS)))
        with conn.cursor() as cur:
            cur.executemany(sql.SQL("insert into penalties ({}) values ({})").format(
                sql.SQL(", ").join(map(sql.Identifier, FIELDS)), sql.SQL(", ").join(sql.Placeholder() * len(FIELDS))),
                [[row[name] for name in FIELDS] for row in rows])
    target = tmp_path / "target"
    _collect_and_publish(url, front, registry)
    run_dbt(["build"], url, target_path=target)
    every = {row["decision_no"] for row in rows}
    before = _decisions(url)
    assert all(decisions == every for decisions in before.values()), before

    with psycopg.connect(front) as conn:
        conn.execute("delete from penalties where decision_no = any(%s)", (list(WITHDRAWN),))
    _collect_and_publish(url, front, registry)
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from ops.deletions").fetchone()[0] == 2
        withdrawn = conn.execute("select natural_key ->> 'decision_no', source_key from ops.withdrawals"
                                 " order by 1").fetchall()
    assert [(no, key) for no, key in withdrawn] == [(no, [no]) for no in WITHDRAWN]  # every landed row of them

    run_dbt(["build"], url, target_path=target)
    incremental = _decisions(url)
    assert all(decisions == every - set(WITHDRAWN) for decisions in incremental.values()), incremental
    with psycopg.connect(role_url("share", url)) as conn:  # what a push module reads, as the share reader
        listed = conn.execute("select dataset, decision_no, source_id from share.share_withdrawals"
                              " order by decision_no").fetchall()
    assert listed == [("admin_penalty", no, "snap_penalty") for no in WITHDRAWN]

    run_dbt(["build", "--full-refresh"], url, target_path=target)
    assert _decisions(url) == incremental
