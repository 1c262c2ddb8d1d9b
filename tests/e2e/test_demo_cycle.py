"""End to end: `huiju demo` runs a daily cycle through Airflow DAG runs; exact counts; a rerun loads nothing twice.

The demo's sources deliver 行政处罚 through every channel and the registers (企业/税务/社会组织登记,
社保参保, 行政许可, 红黑名单, 户籍) through the inbox; each staging model holds exactly the good rows
its sources delivered, and every layer is built from them.
"""

from __future__ import annotations

import contextlib
import csv
import email
import email.policy
import json
import os
import re
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from huiju_demo.ports import free_port

from huiju import warehouse
from huiju.airflow_env import PORTAL_USER
from huiju.monitoring import DASHBOARD_PATH
from huiju.registry import load_registry
from huiju.settings import get_settings
from huiju.warehouse import with_database
from huiju_portal.config import PortalSettings
from huiju_portal.ingest_runs import request_ingest_run
from tests.support.portal import filled_template

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Two full daily cycles through Airflow (nineteen sources, the monitor, dbt) plus `make up`: minutes, not seconds
# (a quarter of an hour a cycle on a loaded 2-core machine).
pytestmark = pytest.mark.timeout(3600)

DAY = "2026-11-20"
# The datasets the demo's sources deliver, and the staging model of each.
STAGED = {"admin_penalty": "stg_landing__admin_penalties",
          "enterprise_registration": "stg_landing__enterprise_registrations",
          "tax_registration": "stg_landing__tax_registrations",
          "social_org_registration": "stg_landing__social_org_registrations",
          "social_insurance": "stg_landing__social_insurance_enrollments",
          "admin_license": "stg_landing__admin_licenses",
          "credit_list": "stg_landing__credit_list_entries",
          "household_registration": "stg_landing__household_registrations"}
DATASETS = tuple(STAGED)


def _sources_of(manifest: dict, dataset: str) -> dict:
    registry = load_registry()
    return {sid: spec for sid, spec in manifest["sources"].items() if registry.source(sid).dataset == dataset}


@pytest.fixture(scope="module")
def cycle(tmp_path_factory: pytest.TempPathFactory, make_database) -> dict:
    var = tmp_path_factory.mktemp("var")
    url = make_database("e2e")
    env = {**os.environ, "HUIJU_VAR": str(var), "HUIJU_WAREHOUSE_URL": url, "HUIJU_UI_PORT": str(free_port()),
           "HUIJU_PORTAL_PORT": str(free_port())}
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW")}

    def run_demo() -> str:
        done = subprocess.run([sys.executable, "-m", "huiju.cli", "demo", "--day", DAY], env=env,
                              capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Calculating Metrics" not in done.stderr  # GX's progress bars stay out of the terminal
        return done.stdout

    # The first run is given the admin's URL (a superuser): it bootstraps the warehouse, the only superuser use.
    with connection_log(url) as first_connections:
        first = run_demo()
    with psycopg.connect(url) as conn:
        loads_after_first = conn.execute("select load_id, status, rows_received, received_at from ops.loads"
                                         " order by load_id").fetchall()
        notices_after_first = conn.execute("select dedupe_key from ops.notices order by 1").fetchall()
    # The second is given the owner's URL, as a deployment is after its bootstrap: no admin in its environment.
    env["HUIJU_WAREHOUSE_URL"] = warehouse.role_url("owner", url)
    with connection_log(url) as second_connections:
        second = run_demo()
    manifest = json.loads((var / "demo" / f"manifest-{DAY}.json").read_text(encoding="utf-8"))
    history = json.loads((var / "demo" / f"history-{DAY}.json").read_text(encoding="utf-8"))
    return {"url": url, "first": first, "second": second, "manifest": manifest, "history": history,
            "loads_after_first": loads_after_first, "notices_after_first": notices_after_first, "var": var,
            "connections": (first_connections, second_connections)}


@contextlib.contextmanager
def connection_log(url: str) -> Iterator[list[tuple[str, str]]]:
    """Every (role, database) that logged in to the warehouse of ``url`` or a database beside it, while inside.

    From the server's own log (``log_connections``, switched on for the while), read through the server by the
    tests' admin (``pg_read_file``): the embedded server only (an external server's log is not ours to read).
    """
    found: list[tuple[str, str]] = []
    if get_settings().warehouse_url:
        yield found
        return
    admin = warehouse.server_url()
    database = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("alter system set log_connections = on")
        conn.execute("select pg_reload_conf()")
        time.sleep(0.5)  # the reload is asynchronous
        start = conn.execute("select (pg_stat_file('log')).size").fetchone()[0]
    try:
        yield found
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            text = conn.execute("select pg_read_file('log', %s, (pg_stat_file('log')).size - %s)",
                                (start, start)).fetchone()[0]
            conn.execute("alter system reset log_connections")
            conn.execute("select pg_reload_conf()")
        for role, db in re.findall(r"connection authorized: user=(\S+) database=(\S+)", text):
            if db == database or db.startswith(database + "_"):
                found.append((role, db))


def _history_rows(cycle: dict, dataset: str) -> int:
    """Rows of the earlier deliveries the demo landed for monitoring (none defective), of ``dataset``'s sources."""
    registry = load_registry()
    return sum(b["rows"] for b in cycle["history"]["batches"] if registry.source(b["source_id"]).dataset == dataset)


def test_exact_counts_per_source(cycle: dict) -> None:
    with psycopg.connect(cycle["url"]) as conn:
        rows = conn.execute("select source_id, status, rows_received, rows_accepted, rows_quarantined"
                            " from ops.loads where load_id <> all(%s)",
                            ([b["load_id"] for b in cycle["history"]["batches"]],)).fetchall()
    # One batch per source, but the web source's: one per page of its list (20 records a page).
    registry = load_registry()
    by_source: dict[str, tuple] = {}
    for source_id, status, received, accepted, quarantined in rows:
        assert source_id not in by_source or registry.source(source_id).channel == "web", source_id
        statuses, *counts = by_source.get(source_id, (set(), 0, 0, 0))
        by_source[source_id] = (statuses | {status}, *(a + b for a, b in zip(counts, (received, accepted, quarantined),
                                                                              strict=True)))
    assert set(by_source) == set(cycle["manifest"]["sources"])
    for source_id, expected in cycle["manifest"]["sources"].items():
        quarantined = expected["expected_quarantined"]
        written = expected["rows_written"]
        assert by_source[source_id] == ({"published"}, written, written - quarantined, quarantined), source_id


def test_quarantine_names_the_departments_rows_and_rules(cycle: dict) -> None:
    with psycopg.connect(cycle["url"]) as conn:
        rows = conn.execute("select l.source_id, q.row_no, q.violations from quarantine.rows q"
                            " join ops.loads l using (load_id)").fetchall()
    found = {(source, row_no): {(v["field"], v["rule"]) for v in violations} for source, row_no, violations in rows}
    expected = {(source_id, bad["row"]): {(d["field"], d["rule"]) for d in bad["defects"]}
                for source_id, spec in cycle["manifest"]["sources"].items() for bad in spec["bad_rows"]}
    assert found == expected


def test_credit_layer_is_built_from_published_good_rows(cycle: dict) -> None:
    with psycopg.connect(cycle["url"]) as conn:
        staging = conn.execute("select count(*) from staging.stg_landing__admin_penalties").fetchone()[0]
        # decisions, not rows: the province's backflow hands back some of the city's (one record each)
        legal = conn.execute("select count(distinct decision_no) from staging.stg_landing__admin_penalties"
                             " where party_type in ('法人及非法人组织', '个体工商户')").fetchone()[0]
        credit = conn.execute("select count(*) from credit.credit_legal_person_penalty").fetchone()[0]
    penalties = _sources_of(cycle["manifest"], "admin_penalty")
    accepted = sum(s["rows_written"] - s["expected_quarantined"] for s in penalties.values())
    assert staging == accepted + _history_rows(cycle, "admin_penalty")
    assert credit == legal > 0


def test_every_dataset_is_staged_from_exactly_its_good_rows(cycle: dict) -> None:
    with psycopg.connect(cycle["url"]) as conn:
        for dataset in DATASETS:
            sources = _sources_of(cycle["manifest"], dataset)
            assert sources, dataset
            staged = conn.execute(psycopg.sql.SQL("select count(*) from {}").format(
                psycopg.sql.Identifier("staging", STAGED[dataset]))).fetchone()[0]
            good = sum(s["rows_written"] - s["expected_quarantined"] for s in sources.values())
            assert staged == good + _history_rows(cycle, dataset), dataset


def test_the_registers_reach_the_basic_thematic_archive_and_credit_layers(cycle: dict) -> None:
    with psycopg.connect(cycle["url"]) as conn:
        registered = conn.execute("select count(*) from basic.basic_legal_person where is_registered").fetchone()[0]
        residents = conn.execute("select count(*) from basic.basic_population where is_registered_resident"
                                 ).fetchone()[0]
        staged_residents = conn.execute("select count(distinct id_number)"
                                        " from staging.stg_landing__household_registrations").fetchone()[0]
        lifecycle = conn.execute("select count(*) from thematic.thematic_enterprise_lifecycle").fetchone()[0]
        insurance = conn.execute("select count(*) from thematic.thematic_social_insurance").fetchone()[0]
        licences = conn.execute("select count(*) from credit.credit_admin_license").fetchone()[0]
        staged_licences = conn.execute("select count(distinct decision_no) from staging.stg_landing__admin_licenses"
                                       ).fetchone()[0]
        masked = conn.execute("select count(*) from share.share_legal_person_license_publication"
                              " where legal_rep_id_no is not null and substr(legal_rep_id_no, 7, 8) <> '********'"
                              ).fetchone()[0]
    assert registered > 0 and lifecycle >= registered and insurance > 0
    assert residents == staged_residents > 0
    assert licences == staged_licences > 0
    assert masked == 0


def test_every_layer_has_rows_and_the_summary_lists_them(cycle: dict) -> None:
    from huiju.summary import layer_counts

    with psycopg.connect(cycle["url"]) as conn:
        counts = layer_counts(conn)
    layers = {"raw", "quarantine", "staging", "basic", "thematic", "archive", "credit", "share"}
    assert {schema for schema, _, rows in counts if rows > 0} == layers
    for schema, name, _ in counts:
        assert name in cycle["first"], f"{schema}.{name} missing from the summary"


def test_a_second_run_of_the_same_day_loads_nothing_twice(cycle: dict) -> None:
    with psycopg.connect(cycle["url"]) as conn:
        loads = conn.execute("select load_id, status, rows_received, received_at from ops.loads"
                             " order by load_id").fetchall()
        raw = {dataset: conn.execute(psycopg.sql.SQL("select count(*), count(distinct (_load_id, _row_no)) from {}")
                                     .format(psycopg.sql.Identifier("raw", dataset))).fetchone()
               for dataset in DATASETS}
    assert loads == cycle["loads_after_first"]
    for dataset in DATASETS:
        total = sum(s["rows_written"] for s in _sources_of(cycle["manifest"], dataset).values())
        total += _history_rows(cycle, dataset)
        assert raw[dataset] == (total, total), dataset


def test_the_demo_prints_the_summary_and_where_to_look(cycle: dict) -> None:
    for output in (cycle["first"], cycle["second"]):
        assert "received" in output and "quarantined" in output
        for source_id in cycle["manifest"]["sources"]:
            assert source_id in output
        assert "make up" in output
    assert "credit_legal_person_penalty" in cycle["first"]
    # Every feedback notice (one per source with problem rows) reached the demo's SMTP sink through the notify tasks.
    sent = re.search(r"Notices: email (\d+) sent, 0 pending", cycle["first"])
    with_problems = [s for s in cycle["manifest"]["sources"].values() if s["expected_quarantined"]]
    assert sent and int(sent.group(1)) >= len(with_problems), cycle["first"]


def test_the_portal_channel_takes_an_upload_and_a_manual_entry(cycle: dict) -> None:
    with psycopg.connect(cycle["url"]) as conn:
        rows = conn.execute("select l.source_id, s.kind, a.username from ops.loads l"
                            " join portal.submissions s using (load_id) join portal.accounts a using (account_id)"
                            " where l.channel = 'portal' order by 1").fetchall()
    assert rows == [("mzj_penalty", "entry", "mzj_submitter"), ("sthjj_penalty", "upload", "sthjj_submitter")]
    assert re.search(r"portal login: sthjj_submitter / \S+ \(生态环境局 报送员\)", cycle["first"])
    assert re.search(r"sthjj_penalty +portal +1 +200 +192 +8 +published", cycle["first"])


def test_the_runs_are_recorded_in_airflow(cycle: dict) -> None:
    database = psycopg.conninfo.conninfo_to_dict(cycle["url"])["dbname"]
    url = with_database(cycle["url"], f"{database}_airflow")
    with psycopg.connect(url) as conn:
        runs = conn.execute("select dag_id, state, count(*) from dag_run group by dag_id, state").fetchall()
    assert {(dag_id, state) for dag_id, state, _ in runs} == {
        (f"ingest__{source_id}", "success") for source_id in cycle["manifest"]["sources"]} | {
        ("huiju_transform", "success"), ("huiju_monitor", "success"), ("huiju_notices", "success"),
        ("huiju_push__city_credit", "success"), ("huiju_push__province_share", "success")}
    # `airflow dags test` replaces an earlier run of the same logical date: one run per DAG and day
    # (the monitor runs for two days: when the missed delivery turned overdue, and the morning after the demo day).
    assert all(count == (2 if dag_id == "huiju_monitor" else 1) for dag_id, _, count in runs), runs


def test_the_day_is_pushed_to_both_platforms_with_every_receipt(cycle: dict) -> None:
    """Issue 18: each target received the day's credit records; every record has a final receipt; the rerun
    sent nothing again (its platforms were fresh, so anything sent twice would show as a second batch)."""
    with psycopg.connect(cycle["url"]) as conn:
        states = dict(((target, state), count) for target, state, count in conn.execute(
            "select target, state, count(*) from ops.push_outbox group by 1, 2"))
        batches = dict(conn.execute("select target, count(*) from ops.push_batches group by 1").fetchall())
        unreceipted = conn.execute("select count(*) from ops.push_outbox o where state in ('accepted', 'rejected')"
                                   " and not exists (select 1 from ops.push_receipts r where r.outbox_id = o.outbox_id)"
                                   ).fetchone()[0]
    for target in ("city_credit", "province_share"):
        assert states.get((target, "accepted"), 0) > 0, states
        assert not [state for (name, state) in states if name == target
                    and state in ("due", "batched", "unknown", "refused")], states
        assert batches[target] >= 1
    assert unreceipted == 0
    assert "Pushes to the credit platforms" in cycle["first"]
    assert re.search(r"city_credit +2026-\d\d-\d\d +\d+", cycle["first"])


def test_the_provinces_backflow_is_taken_in_forwarded_to_the_city_and_never_sent_back(cycle: dict) -> None:
    """Issue 18: the provincial platform's backflow batch lands with origin 省回流; the city decisions it hands
    back stay the city's records; its own reach the city credit platform and never the province."""
    with psycopg.connect(cycle["url"]) as conn:
        loads = conn.execute("select source_id, origin, status from ops.loads where origin = '省回流'").fetchall()
        origins = dict(conn.execute("select origin, count(*) from credit.credit_admin_penalty group by 1").fetchall())
        handed_back = conn.execute(
            "select count(*), count(*) filter (where r.origin = '本地' and r.source_department = 'jtj')"
            " from (select distinct decision_no from staging.stg_landing__admin_penalties"
            "       where source_id = 'province_penalty_backflow') b"
            " join credit.credit_admin_penalty r using (decision_no) where r.decision_no like '示交通罚%'").fetchone()
        sent = dict(conn.execute(
            "select o.target, count(*) from ops.push_outbox o join credit.credit_admin_penalty r"
            " on o.record_key = 'CF:' || r.decision_no and r.origin = '省回流' group by 1").fetchall())
        # Licences come back the same way (a source of their own), their 类别 items partly as national codes.
        licences = dict(conn.execute("select origin, count(*) from credit.credit_admin_license group by 1").fetchall())
        licences_sent = dict(conn.execute(
            "select o.target, count(*) from ops.push_outbox o join credit.credit_admin_license r"
            " on o.record_key = 'XK:' || r.decision_no and r.origin = '省回流' group by 1").fetchall())
        coded = conn.execute("select count(*) from raw.admin_license r join ops.loads l on l.load_id = r._load_id"
                             " where l.origin = '省回流' and r.license_category ~ '^[0-9]+$'").fetchone()[0]
    assert sorted(loads) == [("province_license_backflow", "省回流", "published"),
                             ("province_penalty_backflow", "省回流", "published")]
    assert origins["省回流"] > 0 and origins["本地"] > origins["省回流"]
    assert handed_back[0] > 0 and handed_back[0] == handed_back[1]
    assert sent.get("city_credit", 0) > 0 and "province_share" not in sent, sent
    assert licences["省回流"] > 0 and licences_sent.get("city_credit", 0) > 0, (licences, licences_sent)
    assert "province_share" not in licences_sent and coded == 0, (licences_sent, coded)
    assert "The province's backflow (省回流" in cycle["first"]
    for source in ("province_penalty_backflow", "province_license_backflow"):  # per day: one day, one batch each
        assert re.search(source + r" +2026-\d\d-\d\d +1 +\d+ +\d+ +\d+ +\d+ +\d+ +0\n", cycle["first"]), source


def _missed(cycle: dict) -> tuple[str, str, str]:
    """(department, source, period) of the delivery the demo's history leaves out."""
    missed = cycle["history"]["missed"]
    source = load_registry().source(missed["source_id"])
    return source.department, source.id, missed["period"]


def test_the_missing_delivery_is_chased_once_and_its_email_is_in_the_mail_folder(cycle: dict) -> None:
    department, source_id, period = _missed(cycle)
    registry = load_registry()
    with psycopg.connect(cycle["url"]) as conn:
        keys = [row[0] for row in conn.execute(
            "select dedupe_key from ops.notices where dedupe_key like 'monitor:%%' and source_id = %s"
            " and dedupe_key like %s", (source_id, f"%:{period}")).fetchall()]
        undelivered = conn.execute(
            "select count(*) from ops.notice_deliveries d join ops.notices n using (notice_id)"
            " where n.dedupe_key like 'monitor:%%' and d.delivered_at is null").fetchone()[0]
    # Overdue (催报) and, after three working days, the leader (督办): each exactly once, both delivered.
    assert sorted(keys) == sorted(f"monitor:{level}:{department}:{source_id}:{period}"
                                  for level in ("overdue", "escalate")), keys
    assert undelivered == 0
    mails = []
    for path in sorted((cycle["var"] / "demo" / "mail").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["Subject"].startswith("【催报】"):
            mails.append((path, message))
    dept, source = registry.departments[department], registry.source(source_id)
    chasing = [(path, m) for path, m in mails if dept.name in m["Subject"] and period in m["Subject"]]
    assert len(chasing) == 1, [m["Subject"] for _, m in mails]
    path, message = chasing[0]
    body = re.sub(r"<[^>]+>", "", message.get_body(("plain", "html")).get_content())  # the provider sends HTML
    assert source.title in message["Subject"] and registry.dataset_of(source).title in message["Subject"]
    assert period in body and "报送截止日期：" in body and "已逾期" in body, body
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)|(?<!\d)\d{17}[\dXx](?!\d)", body + message["Subject"])
    assert str(path) in cycle["first"]  # the summary says where it is


def test_the_summary_prints_the_overdue_list_scorecard_and_calendar_warning(cycle: dict) -> None:
    department, source_id, period = _missed(cycle)
    registry = load_registry()
    output = cycle["first"]
    assert "DAG run huiju_monitor for 2026-11-21: success" in output
    assert f"DAG run huiju_monitor for {cycle['history']['missed']['overdue_on']}: success" in output
    overdue = output[output.index("逾期未报 (overdue)"):]
    line = next(line for line in overdue.splitlines() if period in line)
    assert registry.departments[department].name in line and "未报送" in line, line
    assert "2026年11月 数据报送情况通报" in output and "数据项 (sources), 2026-11:" in output
    assert re.search(rf"{source_id} +应报 +\d+ 已报 +\d+ 及时率", output), output
    assert "WARNING (calendar): 工作日历缺少2027年" in output


def test_the_batch_far_off_its_history_alerts_the_stewards_and_is_published(cycle: dict) -> None:
    anomalous = {b["source_id"] for b in cycle["history"]["batches"]} - {cycle["history"]["missed"]["source_id"]}
    assert len(anomalous) == 1
    source_id = anomalous.pop()
    with psycopg.connect(cycle["url"]) as conn:
        found = conn.execute(
            "select l.load_id, l.data_date, l.status, a.metric, a.value, a.median, a.history, a.action"
            " from ops.load_anomalies a join ops.loads l using (load_id) order by 1, 4").fetchall()
        notices = conn.execute("select dedupe_key, subject from ops.notices where kind = 'anomaly'").fetchall()
    # Only the day's batch of the source with five weeks of small files; the same weekday's five compared.
    assert [(str(day), status, metric, value, history, action) for _, day, status, metric, value, _, history, action
            in found] == [(DAY, "published", "rows", 200, 5, "alert")], found
    load_id, median = found[0][0], found[0][5]
    assert median < 20
    assert notices == [(f"anomaly:{load_id}", notices[0][1])] and "【数据异常预警】" in notices[0][1], notices
    assert re.search(rf"预测预警:\n  {source_id} .*: rows 200 vs median \d+ of 5 batches → stewards alerted",
                     cycle["first"]), cycle["first"]


def test_a_second_monitor_run_queues_nothing_new(cycle: dict) -> None:
    with psycopg.connect(cycle["url"]) as conn:
        notices = conn.execute("select dedupe_key from ops.notices order by 1").fetchall()
    assert notices == cycle["notices_after_first"]
    assert "DAG run huiju_monitor for 2026-11-21: success" in cycle["second"]


def test_every_file_the_cycles_wrote_is_private(cycle: dict) -> None:
    """0600 (originals 0400) in 0700 folders: archive, outbox, logs, Airflow's secrets, dbt's and GX's files.

    Before the tests below write into var/ themselves (with pytest's own umask).
    """
    loose = sorted(str(path.relative_to(cycle["var"])) for path in cycle["var"].rglob("*")
                   if not path.is_symlink() and stat.S_IMODE(path.lstat().st_mode) & 0o077)
    assert not loose, f"{len(loose)} files or folders readable by others: {loose[:20]}"
    assert stat.S_IMODE(cycle["var"].stat().st_mode) == 0o711  # passable, not listable (private_root)
    originals = [path for path in (cycle["var"] / "archive").rglob("*") if path.is_file()]
    assert originals and {stat.S_IMODE(path.stat().st_mode) for path in originals} == {0o400}


def _upload_through_portal(client: httpx.Client, var: Path) -> str:
    """Upload a small filled-in template as 生态环境局's clerk (logged in on ``client``); the new batch's id."""
    registry = load_registry()
    source = registry.source("sthjj_penalty")
    path = filled_template(registry, source, var / "demo" / "portal" / "加报.xlsx", 5, tag="UP")
    page = client.get("/submit/sthjj_penalty/upload")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    # The portal was just started beside Airflow's services: its first validation may still wait for
    # Great Expectations' import (seconds, many more on a busy machine).
    done = client.post("/submit/sthjj_penalty/upload", data={"csrf_token": csrf},
                       files={"file": (path.name, path.read_bytes(), XLSX)}, timeout=180)
    assert "校验通过，待入库" in done.text, done.text[:2000]
    return done.url.path.rsplit("/", 1)[-1]


def _wait_for_run(address: str, token: str, dag_id: str, run_id: str) -> dict:
    """The DAG run ``run_id`` once Airflow has it (the portal asks after answering the page)."""
    deadline = time.monotonic() + 60
    while True:
        found = httpx.get(f"{address}api/v2/dags/{dag_id}/dagRuns/{run_id}",
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)
        if found.status_code == 200 or time.monotonic() > deadline:
            assert found.status_code == 200, found.text
            return found.json()
        time.sleep(1)


def test_make_up_serves_the_runs_with_the_printed_login_and_down_stops_it(cycle: dict) -> None:
    port, portal_port = free_port(), free_port()
    env = {**os.environ, "HUIJU_VAR": str(cycle["var"]), "HUIJU_WAREHOUSE_URL": cycle["url"],
           "HUIJU_UI_PORT": str(port), "HUIJU_PORTAL_PORT": str(portal_port)}
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW")}
    up = subprocess.run([sys.executable, "-m", "huiju.cli", "up"], env=env, capture_output=True, text=True,
                        timeout=400)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        match = re.search(rf"Airflow UI: (http://127\.0\.0\.1:{port}/)\s+login: (\S+) / (\S+)", up.stdout)
        assert match, up.stdout
        address, user, password = match.groups()
        request = urllib.request.Request(address + "auth/token", method="POST",
                                         data=json.dumps({"username": user, "password": password}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            airflow_token = json.load(response)["access_token"]
        runs_request = urllib.request.Request(address + "api/v2/dags/~/dagRuns?limit=50",
                                              headers={"Authorization": f"Bearer {airflow_token}"})
        with urllib.request.urlopen(runs_request, timeout=30) as response:
            runs = json.load(response)["dag_runs"]
        assert {run["dag_id"] for run in runs if run["state"] == "success"} == {
            f"ingest__{source_id}" for source_id in cycle["manifest"]["sources"]} | {
            "huiju_transform", "huiju_monitor", "huiju_notices",
            "huiju_push__city_credit", "huiju_push__province_share"}
        # The stewards' dashboard shows the demo's numbers: the missed delivery's department is on its overdue list.
        assert httpx.get(address + DASHBOARD_PATH, timeout=30).status_code == 401
        dashboard = httpx.get(address + DASHBOARD_PATH, headers={"Authorization": f"Bearer {airflow_token}"},
                              timeout=60)
        missed_department = load_registry().departments[_missed(cycle)[0]].name
        assert dashboard.status_code == 200 and "数据报送监控看板" in dashboard.text, dashboard.status_code
        assert missed_department in dashboard.text
        # The docs site is behind Airflow's login (huiju_airflow.auth): refused anonymously, served with the token.
        for site in ("huiju-dbt-docs/",):
            assert httpx.get(address + site, timeout=30).status_code == 401
            served = httpx.get(address + site, headers={"Authorization": f"Bearer {airflow_token}"}, timeout=30)
            assert served.status_code == 200 and "<html" in served.text.lower(), (site, served.status_code)
        # The departments' portal runs beside it: the printed department login opens its own history.
        portal = re.search(rf"部门门户: (http://127\.0\.0\.1:{portal_port}/)\s+login: (\S+) / (\S+)", up.stdout)
        assert portal, up.stdout
        with httpx.Client(base_url=portal.group(1), follow_redirects=True) as client:
            token = re.search(r'name="login_token" value="([^"]+)"', client.get("/login").text).group(1)
            home = client.post("/login", data={"username": portal.group(2), "password": portal.group(3),
                                               "login_token": token, "next": "/history"})
            assert home.url.path == "/history" and "sthjj_penalty_" in home.text and "gaj_" not in home.text
            # A workbook that passes validation asks Airflow for the source's ingest run at once.
            load_id = _upload_through_portal(client, cycle["var"])
        run = _wait_for_run(address, airflow_token, "ingest__sthjj_penalty", f"portal__{load_id}")
        assert run["run_type"] == "manual" and "已通过校验" in (run["note"] or ""), run
        # Asking again for the same batch is the same run (the portal's own account, role user).
        portal_account = PortalSettings(airflow_url=address, airflow_user=PORTAL_USER, airflow_password=json.loads(
            (cycle["var"] / "airflow" / "simple_auth_manager_passwords.json").read_text())[PORTAL_USER])
        registry = load_registry()
        assert request_ingest_run(portal_account, registry.source("sthjj_penalty"), load_id) == "already requested"
    finally:
        down = subprocess.run([sys.executable, "-m", "huiju.cli", "down"], env=env, capture_output=True, text=True,
                              timeout=60)
    assert down.returncode == 0 and "stopped api-server" in down.stdout, down.stdout + down.stderr
    assert "stopped portal" in down.stdout, down.stdout


# The leak scan: after the demo's cycles (and `make up`, above) and a set of failing inputs, no ID or
# mobile number the demo generated is anywhere but the data stores (tests/support/leak_scan.py).
#
# Places known to leak, each with the reason it is tolerated for now (none since the masking landed, and since
# the push payloads a target receives with IDs in clear moved from ops to push_private, migration 181).
KNOWN_LEAKS: dict[str, str] = {}


def _write_failing_inputs(folder: Path) -> tuple[str, list[Path], list[str]]:
    """Broken files for a CSV penalty source, carrying numbers built like the demo's; (source, files, numbers)."""
    from huiju_demo.bulk import penalty_row, valid_id_number

    registry = load_registry()
    source = next(s for s in registry.sources.values() if s.dataset == "admin_penalty" and s.format == "csv")
    headers = list(source.columns)
    content, name_header = source.header_for_field["penalty_content"], source.header_for_field["party_name"]
    ids = [valid_id_number(900_000 + n) for n in range(6)]
    mobiles = [f"1390000{n:04d}" for n in range(6)]

    def row(n: int, **changes: str) -> list[str]:
        values = penalty_row(source, 900_000 + n, "LEAK") | {content: f"联系电话{mobiles[n]}"}
        return [{**values, **changes}.get(h, "") for h in headers]

    def write(name: str, rows: list[list[str]]) -> Path:
        path = folder / name
        with path.open("w", encoding="utf-8" if source.encoding == "utf-8" else "gb18030", newline="") as handle:
            csv.writer(handle).writerows(rows)
        return path

    folder.mkdir(parents=True, exist_ok=True)
    files = [
        write("headerless.csv", [row(0), row(1)]),                                  # the first data row as header
        write("title_first.csv", [[f"经办人 张三 身份证 {ids[2]} 电话 {mobiles[2]}"], headers, row(2)]),
        write("ragged.csv", [headers, row(3), [*row(4), ids[4], mobiles[4]]]),      # a row with extra cells
        write("free_text.csv", [headers, row(5, **{                                 # numbers glued, spaced, +86
            name_header: "", content: f"ID{ids[5]}x 身份证{ids[5][:6]} {ids[5][6:14]} {ids[5][14:]} "
                                      f"电话+86 {mobiles[5][:3]} {mobiles[5][3:7]} {mobiles[5][7:]}"})]),
    ]
    return source.id, files, ids + mobiles


@pytest.fixture(scope="module")
def leak_scan(cycle: dict) -> dict[str, list]:
    """Every finding of the scan, by place, after the failing inputs went through ``huiju land``."""
    from tests.support.leak_scan import collect_generated, group, scan_database, scan_files, scan_schema

    var, url = cycle["var"], cycle["url"]
    source_id, files, numbers = _write_failing_inputs(var / "work" / "failing-inputs")
    env = {**os.environ, "HUIJU_VAR": str(var), "HUIJU_WAREHOUSE_URL": url}
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW")}
    log = var / "airflow" / "logs" / "huiju" / "failing-inputs.log"  # what a person running them would keep
    with log.open("a", encoding="utf-8") as out:
        for path in files:
            subprocess.run([sys.executable, "-m", "huiju.cli", "land", source_id, str(path), "--day", DAY], env=env,
                           stdout=out, stderr=subprocess.STDOUT, timeout=300)
    database = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(url) as conn:
        needles = collect_generated(conn, var / "archive")
        needles.collect(" ".join(numbers))
        leaks = scan_files(needles, var) + scan_schema(needles, conn, "ops") + scan_schema(needles, conn, "quarantine")
        # Where the payloads the city credit platform is entitled to (IDs in clear) are kept, and who may read them.
        entitled = scan_schema(needles, conn, "push_private")
        # PostgreSQL's predefined roles (pg_read_all_data) are left out: a role granted one shows up itself.
        readers = {role for (role,) in conn.execute(
            "select rolname from pg_roles where has_schema_privilege(oid, 'push_private', 'usage')"
            " and has_table_privilege(oid, 'push_private.payloads', 'select') and not rolsuper"
            " and not starts_with(rolname, 'pg_')")}
    with psycopg.connect(with_database(url, f"{database}_airflow")) as conn:  # XCom, rendered fields, notes, logs
        leaks += scan_database(needles, conn)
    print(f"leak scan: {len(needles.ids)} IDs and {len(needles.mobiles)} mobiles looked for; "
          f"{len(leaks)} findings in {len(group(leaks))} places")
    return {"needles": needles, "leaks": group(leaks), "var": var, "entitled": entitled, "readers": readers}


def test_no_generated_id_or_mobile_in_logs_ops_xcom_gx_or_dbt_logs(leak_scan: dict) -> None:
    needles, leaks, var = leak_scan["needles"], leak_scan["leaks"], leak_scan["var"]
    assert len(needles.ids) > 500 and len(needles.mobiles) > 50  # the demo's numbers were collected (200 rows a source)
    # Every place the issue names was there to scan.
    for place in ("airflow/logs", "dbt/logs", "gx/uncommitted", "demo/mail"):
        assert (var / place).is_dir(), place
    # The IDs a target receives in clear were pushed (so the scan above had them to find), and are kept where
    # only the push component (and the owner, through its login) can read them.
    assert leak_scan["entitled"], "no clear ID in push_private.payloads: was the day pushed?"
    assert leak_scan["readers"] <= {warehouse.OWNER_ROLE, warehouse.COMPONENT_ROLES["push"],
                                    warehouse.login_role("push")}, leak_scan["readers"]
    unexpected = {place: found for place, found in leaks.items() if place not in KNOWN_LEAKS}
    assert not unexpected, "citizens' numbers in clear:\n" + "\n".join(
        f"  {place}: {len(found)} ({', '.join(str(leak.number) for leak in found[:3])} …)"
        for place, found in unexpected.items())
    fixed = sorted(set(KNOWN_LEAKS) - set(leaks))
    if fixed:
        print(f"known leaks no longer found (remove them from KNOWN_LEAKS): {fixed}")
    known = {place: found for place, found in leaks.items() if place in KNOWN_LEAKS}
    if known:
        pytest.xfail("; ".join(f"{place} ({len(found)}): {KNOWN_LEAKS[place]}" for place, found in known.items()))


@pytest.mark.skipif(bool(get_settings().warehouse_url), reason="reads the embedded server's log, not an external one's")
def test_nothing_connects_as_a_superuser_once_the_warehouse_is_bootstrapped(cycle: dict) -> None:
    first, second = cycle["connections"]
    with psycopg.connect(cycle["url"]) as conn:
        superusers = {name for (name,) in conn.execute("select rolname from pg_roles where rolsuper")}
    own = {*warehouse.platform_logins(), "huiju_demo_frontdb"}
    # The second cycle, on a bootstrapped platform: every process — the demo command, Airflow's scheduler and
    # tasks (landing, GX, dbt, monitor, notices), the portal, the department's front-end database — logged in
    # with a role of its own, none a superuser; Airflow's metadata only as Airflow's role.
    assert second and {role for role, _ in second} <= own, sorted(set(second))
    assert not {role for role, _ in second} & superusers
    assert {role for role, db in second if db.endswith("_airflow")} == {warehouse.login_role("airflow")}
    assert {warehouse.login_role(c) for c in ("landing", "validation", "transformation", "portal")} <= \
        {role for role, _ in second}
    # The first cycle bootstrapped it: the superuser logged in only for that, a few times, not per task.
    bootstrap = [db for role, db in first if role in superusers]
    assert 0 < len(bootstrap) <= 12, bootstrap
    assert {role for role, _ in first} - superusers <= own


def test_one_sharing_request_of_each_kind_ends_where_it_should_once(cycle: dict) -> None:
    from huiju.sharing.audit import verify_chain

    lines = [line for line in cycle["first"].splitlines() if re.match(r"  #\d+ ", line)]
    assert [line.split(":", 1)[0].split(" ", 3)[-1] for line in lines] == [
        "无条件共享", "有条件共享·提供部门审批", "有条件共享·数据局代审批", "不予共享"], cycle["first"]
    assert all(line in cycle["second"] for line in lines)  # the second run files nothing twice
    with psycopg.connect(cycle["url"]) as conn:
        ends = conn.execute("select status, decided_as from sharing.requests order by request_id").fetchall()
        live = conn.execute("select count(*) from sharing.grants where ended_at is null").fetchone()[0]
        assert verify_chain(conn).intact
    assert ends == [("approved", "auto"), ("approved", "department"), ("approved", "bureau"), ("refused", "policy")]
    assert live == 3
