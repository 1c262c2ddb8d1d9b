"""``huiju``: the platform's command line (demo, Airflow, warehouse, landing a file by hand)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import psycopg

from huiju.airflow_env import ADMIN_USER, admin_password, airflow_environ, ui_port, write_airflow_config
from huiju.extensions import load_extensions
from huiju.landing import land_file
from huiju.masking import install_log_masking
from huiju.monitoring import DASHBOARD_PATH
from huiju.monitoring.anomalies import recent_anomalies, release_hold, render_anomalies
from huiju.monitoring.ledger import record_source, today
from huiju.monitoring.monitor import render_monitor, render_overview, run_monitor
from huiju.pg_release import release_warning
from huiju.private_files import open_private, private_dir, private_root, restrict_umask, write_private
from huiju.processes import alive, wait_until_healthy
from huiju.push.backflow import backflow_report, render_backflow
from huiju.push.run import connection_from_environment, reconciliation, render_reconciliation, run_push, run_replay
from huiju.push.targets import PushTargets, load_targets
from huiju.registry import ConfigError, Registry, load_registry
from huiju.replay import ReplayError, replay, select_manifests
from huiju.reports.config import load_reports
from huiju.settings import TIMEZONE, get_settings
from huiju.sharing.config import load_receivers, load_resources
from huiju.summary import layer_counts, notice_counts, render_summary, render_table, source_summaries
from huiju.validation import publish_load, validate_load
from huiju.warehouse import connect, role_url, stop_embedded, warehouse_url
from huiju.workdays import calendar_warnings

log = logging.getLogger("huiju")

AIRFLOW_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")


def _yesterday() -> dt.date:
    return dt.datetime.now(ZoneInfo(TIMEZONE)).date() - dt.timedelta(days=1)


def _airflow(args: list[str], *, log_name: str | None = None, check: bool = True,
             extra_env: dict[str, str] | None = None) -> int:
    """Run an ``airflow`` command with the platform's environment; output to a log file if named."""
    env = {**airflow_environ(), **(extra_env or {})}
    command = [str(Path(sys.executable).with_name("airflow")), *args]
    if log_name is None:
        return subprocess.run(command, env=env, check=check).returncode
    log_path = get_settings().airflow_home / "logs" / "huiju" / log_name
    with open_private(log_path, "w") as out:
        code = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if code and check:
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
        raise SystemExit(f"airflow {' '.join(args)} failed (exit {code}); log: {log_path}\n" + "\n".join(tail))
    return code


def prepare_airflow() -> None:
    """Airflow's metadata database created and migrated (quick when it already is)."""
    _airflow(["db", "migrate"], log_name="db-migrate.log")


def _dag_test(dag_id: str, day: dt.date, extra_env: dict[str, str] | None = None) -> float:
    """One DAG run for ``day`` through ``airflow dags test``; returns its duration in seconds."""
    started = time.monotonic()
    _airflow(["dags", "test", dag_id, day.isoformat()], log_name=f"{dag_id}.log", extra_env=extra_env)
    return time.monotonic() - started


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate the demo submissions and run one daily cycle through Airflow DAG runs."""
    # why: the demo is a package above the core (huiju_demo); only this command uses it
    from huiju_demo.credit_platform import running_platforms
    from huiju_demo.generate import generate_submissions
    from huiju_demo.history import seed_history
    from huiju_demo.mail_sink import running_mail_sink
    from huiju_demo.portal import submit_through_portal
    from huiju_demo.sharing import file_demo_requests
    from huiju_demo.simulators import running_simulators

    # The demo switch (huiju.settings): a public demo pseudonym key, every pseudonym marked 'demo-';
    # in the environment, so the Airflow processes the demo starts inherit it.
    os.environ["HUIJU_DEMO"] = "1"
    get_settings.cache_clear()
    day = args.day or _yesterday()
    registry = load_registry()
    print(f"Huiju demo: one daily cycle for {day} ({TIMEZONE})")
    _warn_unpatched_postgres()
    started = time.monotonic()
    url = warehouse_url()
    print(f"  warehouse: {_redact(url)}")
    settings = get_settings()
    # The simulated credit platforms run through the cycle: the provincial one serves the day's backflow
    # (省回流) to the ingest, and both take the pushes after the warehouse build (issue 18).
    targets = load_targets(registry).targets
    with running_platforms(targets, registry, day, args.rows) as platforms:
        with running_simulators(registry, day, args.rows, settings.var / "demo" / "simulators") as simulated, \
                running_mail_sink(settings.var / "demo" / "mail") as mail:
            manifest = generate_submissions(registry, settings.inbox_dir, day, rows_per_source=args.rows)
            manifest = dataclasses.replace(manifest, submissions=manifest.submissions + simulated.submissions
                                           + platforms.submissions)
            # The departments that use the portal log in and submit there (uploads, entries by hand).
            portal = submit_through_portal(url, registry, day, settings.var / "demo" / "portal",
                                           rows_per_source=args.rows)
            manifest = dataclasses.replace(manifest, submissions=manifest.submissions + portal.submissions)
            manifest_path = settings.var / "demo" / f"manifest-{day.isoformat()}.json"
            write_private(manifest_path, json.dumps(manifest.to_dict(), ensure_ascii=False, indent=1))
            print(f"  demo submissions: {len(manifest.submissions)} sources ({len(simulated.sources)} served by "
                  f"simulated department systems, {len(platforms.backflow)} by the provincial platform's backflow "
                  f"interface); expected defects in {manifest_path}")
            for line in portal.lines:
                print(f"  {line}")
            # Monitoring judges the morning after the day, when its deliveries arrive; it needs the weeks before.
            as_of = day + dt.timedelta(days=1)
            with psycopg.connect(role_url("landing", url), autocommit=True) as landing, \
                    psycopg.connect(role_url("validation", url), autocommit=True) as validation:
                history = seed_history(landing, validation, registry, day, as_of, settings.var / "demo" / "history")
            (settings.var / "demo" / f"history-{day.isoformat()}.json").write_text(
                json.dumps(history.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
            for line in history.lines(registry):
                print(f"  {line}")
            prepare_airflow()
            # Written once before the runs: parallel `dags test` processes would race to insert the same Assets.
            _airflow(["dags", "reserialize"], log_name="dags-reserialize.log")
            print("  Airflow metadata database ready, DAGs serialized")
            # Sources are independent, so their DAG runs go side by side; the warehouse build waits for all.
            ingest = [source.ingest_dag_id for source in registry.sources.values()]
            # Notices go to the demo's SMTP sink; the province's backflow comes from its simulated platform.
            env = {**simulated.airflow_env(), **platforms.airflow_env(), **mail.airflow_env()}
            with ThreadPoolExecutor(max_workers=3) as pool:
                durations = pool.map(lambda dag_id: _dag_test(dag_id, day, env), ingest)
                for dag_id, seconds in zip(ingest, durations, strict=True):
                    print(f"  DAG run {dag_id} for {day}: success ({seconds:.0f}s)")
            # The monitor runs every hour; the demo runs it for the morning the missed day turned overdue (the 催报),
            # then for the morning after the demo day (the leader's 督办): a higher level queued while a lower one is
            # still undelivered replaces it. Notices go to the demo's SMTP sink through the DAG's notify task.
            for monitored in (history.overdue_on, as_of):
                print(f"  DAG run huiju_monitor for {monitored}: success "
                      f"({_dag_test('huiju_monitor', monitored, env):.0f}s)")
        print(f"  DAG run huiju_transform for {day}: success ({_dag_test('huiju_transform', day):.0f}s)")
        # The day's credit data pushed to the simulated city credit platform and the province (issue 18).
        for target in targets.values():
            print(f"  DAG run {target.dag_id} for {day}: success "
                  f"({_dag_test(target.dag_id, day, platforms.airflow_env()):.0f}s)")
    # One sharing request of each kind (共享申请), once the share layer is built (issue 20).
    sharing_lines = file_demo_requests(url, registry, day)
    report_lines = _demo_report(day)
    with connect(url, role="transformation") as conn:
        print()
        print(render_summary(source_summaries(conn, registry, day)))
        print(f"\nNotices: {notice_counts(conn)}; the e-mails received are in {mail.folder} ({mail.count()})")
        print()
        print(_monitoring_summary(conn, registry, as_of, mail.folder))
        print()
        print("Pushes to the credit platforms (推送对账; `huiju push report`):")
        print(render_reconciliation(reconciliation(conn, today=as_of)))
        print()
        print("The province's backflow (省回流, config/departments/province.yaml) per day it arrived:")
        print(render_backflow(backflow_report(conn, registry, load_targets(registry), by_day=True)))
        print()
        print(render_table(["layer", "table", "rows"],
                           [[schema, name, str(count)] for schema, name, count in layer_counts(conn)], numeric={2}))
    print()
    print("Sharing requests (共享申请; the portal's 资源目录 and 共享申请 pages once `make up` runs):")
    print("\n".join(sharing_lines))
    print()
    print("\n".join(report_lines))
    print(f"\nDone in {time.monotonic() - started:.0f}s.")
    print("To look at it in the Airflow UI: run `make up`, open the address it prints and log in;")
    print("the DAG runs above are under DAGs → ingest__*, huiju_monitor and huiju_transform.")
    print(f"The stewards' dashboard (数据报送监控看板: overdue list, 通报, batches down to their problem rows) is at "
          f"http://127.0.0.1:{ui_port()}/{DASHBOARD_PATH} once `make up` runs.")
    print("The departments' portal (部门门户) starts with `make up` too; log in with the account printed above.")
    return 0


def _demo_report(day: dt.date) -> list[str]:
    """定时离线分析 in the demo: this month's 通报 (the demo day's data and the year before it) from the analysis layer,
    archived under var/reports/, its e-mail delivered to the demo's SMTP sink by the notices DAG."""
    # why: the demo's mail sink is a package above the core; matplotlib and XlsxWriter only for reports
    from huiju_demo.mail_sink import mails_with_subject, running_mail_sink

    from huiju.reports.delivery import run_configured

    # The month the demo's data was published in (today's): its report reads it as of now. A month that
    # closed before the data arrived would read it as of its close, and show none of it.
    run = run_configured("monthly_bulletin", f"{dt.datetime.now(ZoneInfo(TIMEZONE)):%Y-%m}")
    folder = get_settings().var / "demo" / "mail"
    with running_mail_sink(folder) as mail:
        seconds = _dag_test("huiju_notices", day, mail.airflow_env())
    mails = mails_with_subject(folder, "【信用信息月度通报】")
    lines = [f"Analysis report (定时离线分析, config/reports/monthly_bulletin.yaml) for {run.period}, "
             f"data as of {run.as_of.astimezone(ZoneInfo(TIMEZONE)):%Y-%m-%d %H:%M}:",
             f"  workbook: {run.workbook}",
             f"  charts ({len(run.charts)}): {run.workbook.parent / 'charts'}",
             f"  index: {get_settings().var / 'reports' / 'index.json'}",
             f"  e-mailed by DAG run huiju_notices ({seconds:.0f}s): {len(mails)} e-mail(s)"]
    lines += [f"    {path}: {message['Subject']} → {message['To']}" for path, message in mails]
    return lines


def _monitoring_summary(conn: psycopg.Connection, registry: Registry, as_of: dt.date, mail_folder: Path) -> str:
    """监控 as of the demo's morning after: overdue list, the month's scorecard, calendar, alerts, the 催报 e-mails."""
    # why: the demo's mail sink is a package above the core (huiju_demo); only the demo reads it
    from huiju_demo.mail_sink import mails_with_subject

    day = as_of - dt.timedelta(days=1)
    month = f"{day.year}-{day.month:02d}"
    lines = [f"Monitoring (监控) as of {as_of} (huiju_monitor):", "",
             render_overview(conn, registry, as_of, month, calendar_warnings(as_of)), ""]
    # The alerts of the day's batches (judged at validation): those found in the last day, so a rerun shows them too.
    lines.append(render_anomalies(recent_anomalies(conn, dt.datetime.now(ZoneInfo(TIMEZONE)) - dt.timedelta(days=1))))
    mails = mails_with_subject(mail_folder, "【催报")
    lines.append("")
    lines.append(f"催报 e-mails in {mail_folder}: {len(mails)}")
    lines += [f"  {path}: {message['Subject']}" for path, message in mails]
    return "\n".join(lines)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)


def _pid_dir() -> Path:
    return private_dir(get_settings().airflow_home / "run")


def cmd_up(args: argparse.Namespace) -> int:
    """Start Airflow's services in the background and print where to log in."""
    _warn_unpatched_postgres()
    prepare_airflow()
    env = airflow_environ()
    airflow = str(Path(sys.executable).with_name("airflow"))
    logs = private_dir(get_settings().airflow_home / "logs" / "huiju")
    for service in AIRFLOW_SERVICES:
        pid_file = _pid_dir() / f"{service}.pid"
        if pid_file.exists() and alive(int(pid_file.read_text())):
            print(f"  {service} already running (pid {pid_file.read_text().strip()})")
            continue
        with open_private(logs / f"{service}.log") as out:
            process = subprocess.Popen([airflow, service], env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        write_private(pid_file, str(process.pid))
        print(f"  started {service} (pid {process.pid}, log {logs / f'{service}.log'})")
    address = f"http://127.0.0.1:{ui_port()}/"
    print(f"  waiting for {address} …", flush=True)
    if not wait_until_healthy(address + "api/v2/monitor/health", timeout=float(args.timeout)):
        tail = (logs / "api-server.log").read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
        print("Airflow's API server did not come up; the end of its log:\n" + "\n".join(tail), file=sys.stderr)
        return 1
    print(f"\nAirflow UI: {address}  login: {ADMIN_USER} / {admin_password()}")
    print(f"Stewards' dashboard (数据报送监控看板): {address}{DASHBOARD_PATH}  (same login)")
    for extension in load_extensions():
        for line in extension.up():
            print(line)
    print("Stop it with `make down`.")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Stop the services ``up`` started (Airflow's and the extensions', such as the portal)."""
    for extension in load_extensions():
        for line in extension.down():
            print(f"  {line}")
    for pid_file in sorted(_pid_dir().glob("*.pid")):
        pid = int(pid_file.read_text())
        if alive(pid):
            os.killpg(pid, signal.SIGTERM)
            print(f"  stopped {pid_file.stem} (pid {pid})")
        pid_file.unlink()
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    """Print the per-source summary (of one day, or of everything)."""
    with connect(role="transformation") as conn:
        print(render_summary(source_summaries(conn, load_registry(), args.day)))
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate config/ and say what is wrong, file by file."""
    config_dir = Path(args.config) if args.config else None
    checks = (("Configuration", lambda: load_registry(config_dir)),
              ("Calendar overrides", lambda: calendar_warnings(dt.datetime.now(ZoneInfo(TIMEZONE)).date(),
                                                               config_dir=config_dir)),
              ("Reports", lambda: load_reports(config_dir)),
              ("Catalogue", lambda: load_resources(config_dir)),
              ("Sharing receivers", lambda: load_receivers(config_dir)))
    loaded = []
    for what, load in checks:
        try:
            loaded.append(load())
        except ConfigError as exc:
            print(f"{what} {'have' if what.endswith('s') else 'has'} {len(exc.problems)} problem(s):",
                  file=sys.stderr)
            for problem in exc.problems:
                print(f"  - {problem}", file=sys.stderr)
            return 1
    registry, warnings, reports, resources, receivers = loaded
    print(f"OK: {len(registry.departments)} departments, {len(registry.sources)} sources, "
          f"{len(registry.datasets)} datasets, {len(reports)} reports, {len(resources)} catalogued resources, "
          f"{len(receivers)} sharing receivers")
    for warning in registry.security_warnings():
        print(f"WARNING (security): {warning}", file=sys.stderr)
    for warning in warnings:
        print(f"WARNING (calendar): {warning}", file=sys.stderr)
    _warn_unpatched_postgres()
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    """Rebuild the submission ledger, queue the 催报 notices, print overdue list, scorecard and calendar warnings."""
    registry = load_registry()
    as_of = args.as_of or today()
    month = args.month or f"{as_of.year}-{as_of.month:02d}"
    with connect(role="validation") as conn:  # monitoring keeps the ledger in ops, as validation does
        report = run_monitor(conn, registry, as_of)
        print(render_monitor(conn, registry, report, month))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Run a scheduled report (config/reports/<id>.yaml) for a period: workbook, charts, archive, e-mail once."""
    from huiju.reports.delivery import run_configured  # why: matplotlib and XlsxWriter only for this command

    run = run_configured(args.report, args.period)
    print(f"{run.report_id} {run.period}: {run.workbook} ({len(run.charts)} charts, as of {run.as_of.isoformat()}"
          f"{', e-mail queued' if run.notice_id else ''})")
    return 0


def cmd_catalogue(args: argparse.Namespace) -> int:
    """The resource catalogue (政务信息资源目录): list it, or export it as Excel and/or JSON."""
    from huiju.sharing.catalogue import catalogue_json, load_catalogue, write_workbook  # why: only this command

    catalogue = load_catalogue()
    if args.action == "list":
        print(render_table(["代码", "信息资源名称", "提供方", "共享类型", "信息项"],
                           [[entry.code, entry.name, entry.provider, entry.share_type_label, str(len(entry.items))]
                            for entry in catalogue.values()]))
        return 0
    if not (args.xlsx or args.json):
        print("catalogue export: give --xlsx PATH and/or --json PATH", file=sys.stderr)
        return 2
    if args.xlsx:
        print(f"Excel: {write_workbook(catalogue, Path(args.xlsx))}")
    if args.json:
        Path(args.json).write_text(catalogue_json(catalogue), encoding="utf-8")
        print(f"JSON: {args.json}")
    return 0


def cmd_sharing(args: argparse.Namespace) -> int:
    """共享交换: sweep (end grants past their term, chase deadlines: reminders, 督办), push (deliver the grants shared
    by push to their departments' receivers, once a day) or verify the audit chain."""
    from huiju.sharing.audit import verify_chain  # why: only this command
    from huiju.sharing.sweep import run_sharing_sweep

    if args.action == "verify-audit":
        with connect(role="sharing") as conn:
            report = verify_chain(conn)
        print(f"sharing audit trail: {report.rows} row(s), " + ("intact" if report.intact else "BROKEN"))
        for problem in report.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 0 if report.intact else 1
    day = args.day or dt.datetime.now(ZoneInfo(TIMEZONE)).date()
    if args.action == "push":
        from huiju.sharing.delivery import run_share_deliveries  # why: loads the push sender (httpx)

        deliveries = run_share_deliveries(connection_from_environment, period=day)
        for delivery in deliveries:
            print(f"  {delivery.describe()}")
        print(f"sharing push {day}: {len(deliveries)} grant(s) delivered by push or export")
        return 1 if any(delivery.stopped for delivery in deliveries) else 0
    report = run_sharing_sweep(load_registry(), day)
    print(f"sharing sweep {day}: {len(report.expired)} grant(s) expired, {report.reminded} reminder(s), "
          f"{report.escalated} escalation(s) queued")
    return 0


def _warn_unpatched_postgres() -> None:
    """Say so when the PostgreSQL server is older than the latest minor release of its major (a warning only)."""
    warning = release_warning()
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)


def cmd_land(args: argparse.Namespace) -> int:
    """Land one file for a source by hand (then validate and publish it)."""
    registry = load_registry()
    source = registry.source(args.source)
    with connect(role="landing") as conn:
        result = land_file(conn, registry, source, Path(args.file), data_date=args.day,
                           received_at=args.received_at)
        print(f"{result.outcome}: {result.load_id} ({result.rows_received} rows)")
    if result.outcome == "landed" and not args.land_only:
        with connect(role="validation") as conn:
            validation = validate_load(conn, registry, result.load_id)
            print(f"{validation.status}: {validation.rows_accepted} accepted, "
                  f"{validation.rows_quarantined} quarantined")
            if publish_load(conn, result.load_id):
                print("published")
    if result.outcome != "failed":
        record_source(registry, source.id)
    return 0 if result.outcome != "failed" else 1


def cmd_replay(args: argparse.Namespace) -> int:
    """Land archived originals again through the same path as their first delivery (重放), then validate, publish."""
    try:
        manifests = select_manifests(load_id=args.load, source_id=args.source, since=args.since, until=args.until)
        replayed = replay(manifests)
    except ReplayError as exc:
        print(f"huiju replay: {exc}", file=sys.stderr)
        return 1
    for item in replayed:
        status = f", {item.status}" if item.status else ""
        print(f"{item.outcome}: {item.load_id} {item.reference} ({item.rows_received} rows{status})")
    print(f"{len(replayed)} load(s) replayed, {sum(r.outcome == 'landed' for r in replayed)} landed again")
    return 1 if any(r.outcome == "failed" for r in replayed) else 0


def _arrival(text: str) -> dt.datetime:
    """``--received-at``: an ISO date-time; one without a zone is Asia/Shanghai time."""
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(TIMEZONE))


def cmd_airflow(args: argparse.Namespace) -> int:
    """Run any airflow command against this platform's Airflow."""
    return _airflow(args.rest, check=False)


def cmd_warehouse(args: argparse.Namespace) -> int:
    """Start (and bootstrap) the warehouse if needed and print the owner's URL (or, with --stop, stop the embedded one).

    Run with an admin's ``HUIJU_WAREHOUSE_URL`` it is the one-time bootstrap, Airflow's metadata database included,
    so that afterwards nothing needs the admin.
    """
    if args.stop:
        print("embedded PostgreSQL stopped" if stop_embedded() else "embedded PostgreSQL was not running")
        return 0
    url = warehouse_url()
    write_airflow_config()  # Airflow's metadata database, made in the bootstrap when missing
    print(url)
    return 0


def cmd_release_anomaly(args: argparse.Namespace) -> int:
    """Release a batch held as anomalous (预测预警) after checking it: the next ingest run publishes it."""
    with connect(role="validation") as conn:
        released = release_hold(conn, args.load_id, args.by or os.environ.get("USER", "steward"))
    print(f"{args.load_id}: {'released' if released else 'not held for an anomaly; nothing changed'}")
    return 0 if released else 1


def cmd_push(args: argparse.Namespace) -> int:
    """Push credit data to the platforms (推送): run a target, replay a date range, or print the reconciliation."""
    registry = load_registry()
    targets = load_targets(registry)
    if args.action == "report":
        # As the push component: the backflow from the ledger, the outbox and the credit layer, never staging.
        shown = PushTargets({args.target: targets[args.target]}) if args.target else targets
        with connect(role="push") as conn:
            print(render_reconciliation(reconciliation(conn, target=args.target, start=args.start, end=args.end)))
            print("\nThe province's backflow (省回流) per day it arrived:")
            print(render_backflow(backflow_report(conn, registry, shown, by_day=True, start=args.start,
                                                  end=args.end)))
        return 0
    names = [args.target] if args.target else sorted(targets.targets)
    failed = False
    for name in names:
        connection = connection_from_environment(targets[name].connection)
        if args.action == "run":
            report = run_push(registry, name, connection, today=args.day)
            sent = report.sent
            print(f"{name}: {report.due.upserts} new or changed, {report.due.withdrawals} withdrawals queued; "
                  f"{sent.batches_sent} batches sent, {sent.accepted} accepted, {sent.rejected} rejected, "
                  f"{sent.unknown} unknown" + (f"; stopped: {sent.stopped}" if sent.stopped else ""))
        else:
            if args.start is None or args.end is None:
                raise SystemExit("huiju push replay needs --from and --to (YYYY-MM-DD)")
            queued, sent = run_replay(registry, name, connection, args.start, args.end,
                                      include_accepted=args.include_accepted)
            print(f"{name}: replay {args.start}..{args.end}: {queued} records queued again; "
                  f"{sent.accepted} accepted, {sent.rejected} rejected, {sent.unknown} unknown"
                  + (f"; stopped: {sent.stopped}" if sent.stopped else ""))
        failed = failed or sent.stopped is not None
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    """The ``huiju`` argument parser."""
    parser = argparse.ArgumentParser(prog="huiju", description="Huiju 汇聚: government data aggregation platform")
    sub = parser.add_subparsers(dest="command", required=True)
    day = {"type": dt.date.fromisoformat, "default": None, "help": "business day, YYYY-MM-DD (default: yesterday)"}
    demo = sub.add_parser("demo", help=cmd_demo.__doc__)
    demo.add_argument("--day", **day)
    demo.add_argument("--rows", type=int, default=200, help="rows per demo source")
    demo.set_defaults(func=cmd_demo)
    up = sub.add_parser("up", help=cmd_up.__doc__)
    up.add_argument("--timeout", type=float, default=240, help="seconds to wait for the UI")
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help=cmd_down.__doc__).set_defaults(func=cmd_down)
    summary = sub.add_parser("summary", help=cmd_summary.__doc__)
    summary.add_argument("--day", type=dt.date.fromisoformat, default=None)
    summary.set_defaults(func=cmd_summary)
    check = sub.add_parser("check-config", help=cmd_check_config.__doc__)
    check.add_argument("--config", default=None, help="config folder (default: config/)")
    check.set_defaults(func=cmd_check_config)
    monitor = sub.add_parser("monitor", help=cmd_monitor.__doc__)
    monitor.add_argument("--as-of", type=dt.date.fromisoformat, default=None,
                         help="the day to judge deadlines on, YYYY-MM-DD (default: today, Asia/Shanghai)")
    monitor.add_argument("--month", default=None, help="the scorecard's month, YYYY-MM (default: the as-of month)")
    monitor.set_defaults(func=cmd_monitor)
    report = sub.add_parser("report", help=cmd_report.__doc__)
    report.add_argument("report", help="report id (config/reports/<id>.yaml)")
    report.add_argument("--period", default=None,
                        help="YYYY-MM (monthly) or YYYY-Www (weekly); default: the last period that has closed")
    report.set_defaults(func=cmd_report)
    catalogue = sub.add_parser("catalogue", help=cmd_catalogue.__doc__)
    catalogue.add_argument("action", choices=["list", "export"])
    catalogue.add_argument("--xlsx", default=None, help="export: the Excel workbook to write")
    catalogue.add_argument("--json", default=None, help="export: the JSON file to write")
    catalogue.set_defaults(func=cmd_catalogue)
    sharing = sub.add_parser("sharing", help=cmd_sharing.__doc__)
    sharing.add_argument("action", choices=["sweep", "push", "verify-audit"])
    sharing.add_argument("--day", type=dt.date.fromisoformat, default=None,
                         help="the day deadlines are judged on, YYYY-MM-DD (default: today, Asia/Shanghai)")
    sharing.set_defaults(func=cmd_sharing)
    land = sub.add_parser("land", help=cmd_land.__doc__)
    land.add_argument("source")
    land.add_argument("file")
    land.add_argument("--day", type=dt.date.fromisoformat, default=None)
    land.add_argument("--land-only", action="store_true", help="stop after landing")
    land.add_argument("--received-at", type=_arrival, default=None,
                      help="when the department delivered it (an archived submission imported later), "
                           "ISO date-time, Asia/Shanghai unless it says otherwise")
    land.set_defaults(func=cmd_land)
    replaying = sub.add_parser("replay", help=cmd_replay.__doc__)
    replaying.add_argument("--load", default=None, help="one load id (ops.loads.load_id)")
    replaying.add_argument("--source", default=None, help="only this source's loads (with --since)")
    replaying.add_argument("--since", type=dt.date.fromisoformat, default=None,
                        help="loads delivered on or after this day, YYYY-MM-DD (Asia/Shanghai)")
    replaying.add_argument("--until", type=dt.date.fromisoformat, default=None,
                        help="loads delivered on or before this day, YYYY-MM-DD (default: up to now)")
    replaying.set_defaults(func=cmd_replay)
    release = sub.add_parser("release-anomaly", help=cmd_release_anomaly.__doc__)
    release.add_argument("load_id")
    release.add_argument("--by", default=None, help="who released it (default: $USER)")
    release.set_defaults(func=cmd_release_anomaly)
    push = sub.add_parser("push", help=cmd_push.__doc__)
    push.add_argument("action", choices=["run", "replay", "report"])
    push.add_argument("--target", default=None, help="a target of config/push_targets/ (default: every one)")
    push.add_argument("--from", dest="start", type=dt.date.fromisoformat, default=None, help="first day, YYYY-MM-DD")
    push.add_argument("--to", dest="end", type=dt.date.fromisoformat, default=None, help="last day, YYYY-MM-DD")
    push.add_argument("--day", type=dt.date.fromisoformat, default=None,
                      help="the day a run judges deadlines on, YYYY-MM-DD (default: today, Asia/Shanghai)")
    push.add_argument("--include-accepted", action="store_true",
                      help="replay: resend records the target already accepted too")
    push.set_defaults(func=cmd_push)
    airflow = sub.add_parser("airflow", help=cmd_airflow.__doc__)
    airflow.add_argument("rest", nargs=argparse.REMAINDER)
    airflow.set_defaults(func=cmd_airflow)
    warehouse = sub.add_parser("warehouse", help=cmd_warehouse.__doc__)
    warehouse.add_argument("--stop", action="store_true", help="stop the embedded PostgreSQL")
    warehouse.set_defaults(func=cmd_warehouse)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``huiju`` command."""
    logging.basicConfig(level=os.environ.get("HUIJU_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_masking()
    args = build_parser().parse_args(argv)
    # Everything this command and the services it starts write (logs, Airflow's task logs, dbt's and GX's
    # files) is the platform's alone: umask 077, and var/ itself 0700.
    restrict_umask()
    private_root(get_settings().var)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
