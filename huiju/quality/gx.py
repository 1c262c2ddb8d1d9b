"""Great Expectations as the validation runner: suites in ``expectations/``, results in ``var/gx``.

Suites are reviewed files, ``expectations/<dataset>.<dataset>.<severity>.json`` (a source
with rules of its own would get ``<source>.<dataset>.<severity>.json``). They are generated
from the dataset YAML (``python -m huiju.quality.gx write``) so that the YAML stays the
one place a rule is declared; a test fails when a checked-in suite differs from what the
YAML generates, so every rule change shows up in review as a diff of the SQL it runs.

Per batch, :func:`run_suite` validates the landed batch (the query of
:func:`huiju.checks.batch_query` as a GX query asset) against the dataset's suite in a
file context under ``var/gx`` (results kept), and stores one row per expectation in
``ops.validation_results``. Only counts leave the database: the custom expectations never
fetch row values (see :mod:`huiju.quality.expectations`).

GX's Data Docs are not built: their pages load Bootstrap, jQuery, Vega, Font Awesome and a logo
from public CDNs, which a government intranet cannot reach. The stewards' dashboard shows the same
results per batch from ``ops.validation_results``, every asset served by the plugin itself
(``huiju_airflow.dashboard``, a batch's page).

The warehouse URL reaches GX through an environment variable (``${HUIJU_GX_WAREHOUSE_URL}``
in ``great_expectations.yml``), so no credential is ever written under ``var/gx``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql

from huiju.checks import Check, batch_query, checks_for
from huiju.private_files import private_dir
from huiju.registry import Dataset, Registry, Source, load_registry
from huiju.rules import RULES
from huiju.settings import get_settings

log = logging.getLogger(__name__)

SEVERITY = "critical"  # every rule quarantines its rows; a "warning" suite would only report
URL_VARIABLE = "HUIJU_GX_WAREHOUSE_URL"
DATASOURCE = "warehouse"


def suites_dir() -> Path:
    """``expectations/`` of this checkout."""
    return get_settings().home / "expectations"


def gx_root() -> Path:
    """GX's file context (``var/gx``): configuration and validation results."""
    return get_settings().var / "gx"


def suite_name(dataset: str, severity: str = SEVERITY, prefix: str | None = None) -> str:
    """``<source-or-dataset>.<dataset>.<severity>``."""
    return f"{prefix or dataset}.{dataset}.{severity}"


def _unexpected_rows_query(check: Check) -> str:
    # A CTE over {batch}: GX substitutes it with or without an alias depending on the query's
    # shape, and PostgreSQL 16 accepts a derived table either way. GX formats the query with
    # str.format, so the rule's own braces (array literals) are doubled.
    def text(part: sql.Composable) -> str:
        return part.as_string(None).replace("{", "{{").replace("}", "}}")

    join = f" {text(check.join)}" if check.join is not None else ""
    return ("with batch as (select * from {batch}) select _row_no from"
            f" (select b._row_no, {text(check.problem_sql)} as problem from batch b{join}) checked"
            " where problem is not null")


def suite_document(dataset: Dataset, severity: str = SEVERITY) -> dict[str, Any]:
    """The suite file's content for ``dataset``: one expectation per rule and field, with its SQL."""
    expectations = []
    for check in checks_for(dataset):
        expectations.append({
            "type": RULES[check.rule].expectation,
            "kwargs": {"column": check.field.name, "rule": check.rule, "header": check.header,
                       "unexpected_rows_query": _unexpected_rows_query(check)},
            "meta": {"sensitive": check.sensitive, **({"also": check.also} if check.also else {})},
            "severity": severity,
        })
    return {"name": suite_name(dataset.dataset, severity), "expectations": expectations,
            "meta": {"generated_from": f"config/datasets/{dataset.dataset}.yaml",
                     "regenerate": "python -m huiju.quality.gx write"}}


def suite_path(dataset: str, severity: str = SEVERITY) -> Path:
    """Where the suite of ``dataset`` is kept."""
    return suites_dir() / f"{suite_name(dataset, severity)}.json"


def render_suite(dataset: Dataset) -> str:
    """The suite file's text (stable: sorted keys, two-space indent, trailing newline)."""
    return json.dumps(suite_document(dataset), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_suites(registry: Registry | None = None) -> list[Path]:
    """(Re)write every dataset's suite file from the registry; return the paths written."""
    registry = registry or load_registry()
    written = []
    for dataset in registry.datasets.values():
        path = suite_path(dataset.dataset)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_suite(dataset), encoding="utf-8")
        written.append(path)
    return written


def load_suite_document(dataset: str) -> dict[str, Any]:
    """The reviewed suite file of ``dataset``; a clear error if it is missing."""
    path = suite_path(dataset)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no expectation suite for dataset {dataset!r}; "
                                "run `python -m huiju.quality.gx write` and review the file")
    return json.loads(path.read_text(encoding="utf-8"))


def sqlalchemy_url_of(conn: psycopg.Connection) -> str:
    """A SQLAlchemy URL for the database ``conn`` is connected to (Unix sockets included)."""
    info = conn.info
    user = quote(info.user or "", safe="")
    password = info.password or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    query = {}
    host = info.host or ""
    netloc = ""
    if host.startswith("/"):
        query["host"] = host
        if info.port:
            query["port"] = str(info.port)
    else:
        netloc = f"{host}:{info.port}" if info.port else host
    return f"postgresql+psycopg://{auth}{netloc}/{quote(info.dbname, safe='')}" + (
        f"?{urlencode(query)}" if query else "")


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """One GX run at a time per ``var/gx`` (ingest DAGs run side by side; GX's file stores are not concurrent)."""
    private_dir(path.parent)  # results name the batches and fields: 0700
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _quiet_gx() -> None:
    # GX sends usage analytics and logs at INFO; a task log wants neither (its progress bars: _without_progress_bars).
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    for name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_suite(conn: psycopg.Connection, registry: Registry, source: Source, load_id: str,
              params: dict[str, object]) -> dict[str, Any]:
    """Validate one landed batch with its dataset's suite; store per-expectation counts.

    ``params`` are :func:`huiju.checks.batch_query`'s. Returns ``{"success", "results"}``;
    results are ``(rule, field, success, unexpected_count)``.
    """
    started = time.perf_counter()
    _quiet_gx()
    # why: GX takes seconds to import; only a validation run needs it
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite

    import huiju.quality.expectations  # noqa: F401 - registers the custom expectation types

    dataset = registry.dataset_of(source)
    document = load_suite_document(dataset.dataset)
    delivered = set(source.header_for_field)
    query = batch_query(dataset, params).as_string(None)
    os.environ[URL_VARIABLE] = sqlalchemy_url_of(conn)
    with _exclusive(gx_root() / ".lock"):
        context = gx.get_context(mode="file", project_root_dir=str(gx_root().parent))
        _without_progress_bars(context)
        datasource = context.data_sources.add_or_update_postgres(name=DATASOURCE,
                                                                 connection_string="${" + URL_VARIABLE + "}")
        _forget(context, datasource, f"{document['name']}:{load_id}", load_id)  # left by a run that was killed
        asset = datasource.add_query_asset(name=load_id, query=query)
        batch_definition = asset.add_batch_definition_whole_table("batch")
        suite = ExpectationSuite(name=document["name"], meta=document.get("meta", {}))
        for spec in document["expectations"]:
            if spec["kwargs"]["column"] not in delivered:
                continue  # a field this source does not send: its column is empty, nothing to check
            suite.add_expectation_configuration(_configuration(spec))
        suite = context.suites.add_or_update(suite)
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=f"{suite.name}:{load_id}", data=batch_definition, suite=suite))
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=f"{suite.name}:{load_id}", validation_definitions=[definition],
            actions=[],  # no Data Docs (see the module's docstring)
            result_format={"result_format": "BASIC"}))
        try:
            outcome = checkpoint.run()
        finally:
            # The per-load checkpoint, definition and asset are only handles for this run: the
            # stored result keeps what matters, and GX's config must not grow per batch.
            context.checkpoints.delete(checkpoint.name)
            context.validation_definitions.delete(definition.name)
            datasource.delete_asset(load_id)
            # Each run's context builds its own SQLAlchemy engine: its pooled connections would stay open for the
            # life of the process (the portal's, a replay's: the CI saw 44 idle validation connections).
            datasource.get_engine().dispose()
    results = []
    for run_result in outcome.run_results.values():
        for item in run_result.results:
            kwargs = item.expectation_config.kwargs
            if item.exception_info and item.exception_info.get("raised_exception"):
                message = item.exception_info.get("exception_message")
                raise RuntimeError(f"{source.id}: {load_id}: expectation {kwargs.get('rule')} on "
                                   f"{kwargs.get('column')} could not run: {message}")
            results.append((kwargs["rule"], kwargs["column"], bool(item.success),
                            int(item.result.get("observed_value") or 0), item.expectation_config.type))
    with conn.cursor() as cur:
        cur.execute("delete from ops.validation_results where load_id = %s", (load_id,))
        cur.executemany(
            "insert into ops.validation_results (load_id, suite, expectation, rule, field, success, unexpected_count)"
            " values (%s, %s, %s, %s, %s, %s, %s)",
            [(load_id, document["name"], kind, rule, field, ok, count) for rule, field, ok, count, kind in results])
        seconds = time.perf_counter() - started
        cur.execute(
            "insert into ops.validation_runs (load_id, suite, success, gx_seconds)"
            " values (%s, %s, %s, %s)"
            " on conflict (load_id) do update set suite = excluded.suite, success = excluded.success,"
            " gx_seconds = excluded.gx_seconds, validated_at = now()",
            (load_id, document["name"], bool(outcome.success), seconds))
    log.info("%s: %s: GX suite %s: %d expectations, %d failed, %.1fs", source.id, load_id, document["name"],
             len(results), sum(not r[2] for r in results), seconds)
    return {"success": bool(outcome.success), "results": results}


def _without_progress_bars(context: Any) -> None:
    """Turn GX's progress bars off in the project's configuration (``progress_bars:`` in great_expectations.yml).

    They are drawn on stderr for every validation: noise in a task log, and in the terminal of
    ``huiju demo``, whose portal uploads validate in its own process.
    """
    from great_expectations.data_context.types.base import ProgressBarsConfig  # why: GX is imported lazily

    current = context.variables.progress_bars
    if current is None or current.get("globally", True) or current.get("metric_calculations", True):
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        context.variables.save()


def _forget(context: Any, datasource: Any, name: str, asset: str) -> None:
    for store in (context.checkpoints, context.validation_definitions):
        # Absent is the normal case, and GX raises several exception types for it.
        with contextlib.suppress(Exception):
            store.delete(name)
    if any(a.name == asset for a in datasource.assets):
        datasource.delete_asset(asset)


def _configuration(spec: dict[str, Any]) -> Any:
    # why: GX takes seconds to import; only a validation run needs it
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    return ExpectationConfiguration(type=spec["type"], kwargs=dict(spec["kwargs"]), meta=spec.get("meta", {}),
                                    severity=spec.get("severity", SEVERITY))


if __name__ == "__main__":  # python -m huiju.quality.gx write
    import sys

    if sys.argv[1:] != ["write"]:
        raise SystemExit("usage: python -m huiju.quality.gx write")
    for written in write_suites():
        print(written)
