"""Running the dbt project against the warehouse, in-process (dbt's programmatic runner).

Three things live under ``var/dbt``:

* ``target/`` — what ``dbt build`` writes (run results, compiled SQL);
* ``manifest/manifest.json`` — the parsed project, produced lazily by :func:`ensure_manifest`
  (``dbt parse``, no database) whenever a file under ``dbt_project/`` is newer; the transform
  DAG renders one Airflow task per dbt node from it (Cosmos ``LoadMode.DBT_MANIFEST``);
* ``docs/`` — ``dbt docs generate`` output (index.html, manifest.json, catalog.json), served in
  the Airflow UI by the Huiju plugin.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import hmac
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from huiju.private_files import private_dir
from huiju.settings import get_settings, secret_setting

log = logging.getLogger(__name__)

#: Every pseudonym made under the demo switch (``HUIJU_DEMO=1``) starts with this, so a demo
#: pseudonym can never pass for a real one (nor be mixed with real ones in a population base).
DEMO_PSEUDONYM_PREFIX = "demo-"

_KEY_OPTION = re.compile(r"\s*-c huiju\.pseudonym_(?:[io]pad|prefix)=\S*")
_SHA256_BLOCK = 64

# dbt allocates millions of short-lived objects (a Jinja context of ~500 macros per node, events,
# result rows): with CPython's default thresholds the cyclic GC runs ~900 times in a daily build,
# ~0.7 s of the ~6.5 s of CPU it takes. A larger first-generation threshold makes that a dozen
# passes (~0.3 s); the cycles (each node's context refers to itself) are still collected as it goes.
_DBT_GC_THRESHOLD = (50_000, 20, 100)

# Files whose change means the project must be parsed again (not dbt's own output).
_PROJECT_SKIP = {"target", "logs", "dbt_packages", ".user.yml"}


class TransformError(RuntimeError):
    """dbt reported failing models or tests; the message lists them."""


class PseudonymKeyMissing(RuntimeError):
    """``HUIJU_PSEUDONYM_KEY`` is not set and the demo switch is off: the transform refuses to run."""


def _demo_pseudonym_key() -> str:
    # Derived, not stored: the demo's key is public by nature (anyone can run the demo), which is
    # why its pseudonyms carry DEMO_PSEUDONYM_PREFIX and why nothing but the demo switch selects it.
    return hashlib.sha256(b"huiju demo switch: pseudonyms made with this key are public").hexdigest()


def pseudonym_key() -> str:
    """``HUIJU_PSEUDONYM_KEY``; under the demo switch only, a derived demo key.

    Fails closed: without the variable and without ``HUIJU_DEMO=1`` it raises
    :class:`PseudonymKeyMissing` — a pseudonym made under a known key can be reversed by hashing
    the ~10^11 valid ID numbers, so there is no silent default.
    """
    key = secret_setting("HUIJU_PSEUDONYM_KEY")
    if key:
        return key
    if get_settings().demo:
        return _demo_pseudonym_key()
    raise PseudonymKeyMissing(
        "HUIJU_PSEUDONYM_KEY is not set: the transform will not make pseudonyms under a default key. "
        "Set HUIJU_PSEUDONYM_KEY to a long random secret (from the secret store; never change it "
        "afterwards), or set HUIJU_DEMO=1 for a demo whose pseudonyms are marked 'demo-'.")


def pseudonym_prefix() -> str:
    """What starts every pseudonym this process makes: :data:`DEMO_PSEUDONYM_PREFIX` under the demo switch."""
    return DEMO_PSEUDONYM_PREFIX if get_settings().demo else ""


def pseudonym(id_number: str) -> str:
    """The pseudonym dbt's ``pseudonym()`` macro makes of a normalised ID number (prefix + HMAC-SHA256 hex)."""
    digest = hmac.new(pseudonym_key().encode("utf-8"), id_number.strip().upper().encode("utf-8"), hashlib.sha256)
    return pseudonym_prefix() + digest.hexdigest()


def hmac_pads(key: str) -> tuple[str, str]:
    """The HMAC-SHA256 inner and outer padded keys of ``key`` (RFC 2104), hex.

    dbt computes HMAC with PostgreSQL's built-in sha256() from these (macros/pseudonym.sql), so
    the warehouse needs no pgcrypto; knowing them is as good as knowing the key.
    """
    raw = key.encode("utf-8")
    if len(raw) > _SHA256_BLOCK:
        raw = hashlib.sha256(raw).digest()
    raw = raw.ljust(_SHA256_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in raw).hex(), bytes(b ^ 0x5C for b in raw).hex()


def _pgoptions_with_key(existing: str, key: str, prefix: str = "") -> str:
    """``PGOPTIONS`` plus the session settings carrying the pseudonym key's HMAC pads (and prefix)."""
    inner, outer = hmac_pads(key)
    options = f"{existing.strip()} -c huiju.pseudonym_ipad={inner} -c huiju.pseudonym_opad={outer}"
    return (f"{options} -c huiju.pseudonym_prefix={prefix}" if prefix else options).strip()


def dbt_env(url: str | None = None) -> dict[str, str]:
    """The environment dbt needs for this warehouse.

    ``HUIJU_DBT_*`` for ``dbt_project/profiles.yml`` (the transformation's login role on the database of
    ``url``, default the warehouse; huiju.warehouse.COMPONENT_ROLES), and ``PGOPTIONS`` carrying the pseudonym
    key (as its HMAC pads, see :func:`hmac_pads`) as session settings of every dbt connection: the
    key then never appears in compiled SQL, the manifest or the docs.
    """
    # imported here: the transform DAG reads this module's flags while it is parsed, without psycopg
    from huiju.warehouse import COMPONENT_ROLES, libpq_params, role_url

    key_options = _pgoptions_with_key(_base_pgoptions(), pseudonym_key(), pseudonym_prefix())  # fails closed first
    params = libpq_params(role_url("transformation", url))
    return {
        "HUIJU_DBT_HOST": params["host"],
        "HUIJU_DBT_PORT": params["port"],
        "HUIJU_DBT_USER": params["user"],
        "HUIJU_DBT_PASSWORD": params["password"],
        "HUIJU_DBT_DBNAME": params["dbname"],
        # dbt sets this role on each connection, so what it builds is owned by the group, not the login.
        "HUIJU_DBT_ROLE": COMPONENT_ROLES["transformation"],
        "PGOPTIONS": key_options,
    }


def _base_pgoptions() -> str:
    """PGOPTIONS as set outside Huiju (without a key added earlier in this process)."""
    return _KEY_OPTION.sub("", os.environ.get("PGOPTIONS", "")).strip()


def dbt_dir() -> Path:
    """``var/dbt`` (created 0700): dbt's target, manifest, docs and logs."""
    return private_dir(get_settings().var / "dbt")  # logs and docs hold what the models hold


def manifest_path() -> Path:
    """Where :func:`ensure_manifest` keeps the parsed project (read by the transform DAG)."""
    return dbt_dir() / "manifest" / "manifest.json"


def docs_dir() -> Path:
    """Where :func:`generate_docs` writes the dbt docs site."""
    return dbt_dir() / "docs"


def run_dbt(args: Sequence[str], url: str | None = None, *, target_path: Path | None = None,
            keep_connections: bool = False) -> object:
    """Run ``dbt <args>`` on the project; raise :class:`TransformError` naming what failed.

    ``keep_connections``: each dbt thread keeps its connection from node to node
    (:func:`_connections_kept_between_nodes`, a departure from stock dbt that the scheduled build
    opts into). Returns dbt's result object (e.g. the run results of ``build``).
    """
    settings = get_settings()
    os.environ.update(dbt_env(url))
    project = str(settings.dbt_project_dir)
    target = target_path or dbt_dir() / "target"
    full_args = [*args, "--project-dir", project, "--profiles-dir", project,
                 "--target-path", str(target), "--log-path", str(dbt_dir() / "logs")]
    log.info("dbt %s", " ".join(args))
    result = _invoke(full_args, keep_connections=keep_connections)
    if "--no-write-json" in args and hasattr(result.result, "write"):
        # dbt wrote no JSON artifacts (see SCHEDULED_BUILD); the run results, which an operator
        # reads after a build (failed or not), are written all the same.
        result.result.write(str(target / "run_results.json"))
    if result.exception is not None:
        raise TransformError(f"dbt {' '.join(args)} could not run: {result.exception}") from result.exception
    if not result.success:
        failures = []
        for node_result in getattr(result.result, "results", None) or []:
            status = str(getattr(node_result, "status", ""))
            if status.lower() in {"error", "fail", "runtime error"}:
                failures.append(f"{node_result.node.unique_id}: {node_result.message}")
        raise TransformError(f"dbt {' '.join(args)} failed: " + ("; ".join(failures) or "see the dbt log"))
    return result.result


@contextlib.contextmanager
def _fewer_gc_passes() -> Iterator[None]:
    """The cyclic GC at :data:`_DBT_GC_THRESHOLD` while dbt runs, as it was afterwards."""
    previous = gc.get_threshold()
    gc.set_threshold(*_DBT_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


@contextlib.contextmanager
def _connections_kept_between_nodes() -> Iterator[None]:
    """Each dbt thread keeps its PostgreSQL connection from node to node while dbt runs.

    A departure from stock dbt (dbt_project/README.md), only where a caller asks for it
    (``run_dbt(..., keep_connections=True)``: the scheduled build, :func:`scheduled_build`), by
    patching ``PostgresConnectionManager.release`` for the invocation. dbt closes a thread's
    connection after every node and opens a new one for the next: a new server process, whose
    catalog caches start empty, for each of the ~110 nodes of a daily build — about a second of the
    server's time per build (and milliseconds of dbt's) before any query does its work. Here the
    connection is left open instead, after a rollback that ends whatever transaction the node left
    (dbt's own, or one psycopg2 began implicitly for a lookup): the next node starts as on a new
    connection, with no lock held. A connection that cannot be rolled back is closed as dbt would,
    and the next node opens a new one. dbt closes them all at the end.
    """
    from dbt.adapters.postgres.connections import PostgresConnectionManager

    original = PostgresConnectionManager.release

    def release(self: Any) -> None:
        connection = self.get_if_exists()
        if connection is None or connection.state != "open":
            return original(self)
        try:
            connection.handle.rollback()
            connection.transaction_open = False
        except Exception:  # a broken connection: closed, as dbt does with every one
            log.debug("dbt connection %s could not be rolled back: closed", connection.name, exc_info=True)
            self.close(connection)

    PostgresConnectionManager.release = release
    try:
        yield
    finally:
        PostgresConnectionManager.release = original


def _invoke(args: list[str], *, keep_connections: bool = False) -> Any:
    """``dbtRunner().invoke(args)`` in this process (see :func:`run_dbt` for ``keep_connections``)."""
    with _fewer_gc_passes():
        from dbt.cli.main import dbtRunner  # heavy: imported only when dbt actually runs

        with _connections_kept_between_nodes() if keep_connections else contextlib.nullcontext():
            return dbtRunner().invoke(args)


def _newest_project_file(project: Path) -> float:
    newest = 0.0
    for root, dirs, files in os.walk(project):
        dirs[:] = [d for d in dirs if d not in _PROJECT_SKIP]
        for name in files:
            if name not in _PROJECT_SKIP:
                newest = max(newest, (Path(root) / name).stat().st_mtime)
    return newest


def manifest_is_current() -> bool:
    """True when the manifest exists and no project file is newer."""
    path = manifest_path()
    return path.exists() and path.stat().st_mtime >= _newest_project_file(get_settings().dbt_project_dir)


def ensure_manifest() -> Path:
    """``dbt parse`` into ``var/dbt/manifest`` when the project changed since the last parse.

    Needs no database. The new manifest replaces the old one in one rename, so a DAG parse never
    reads a half-written file.
    """
    path = manifest_path()
    if manifest_is_current():
        return path
    private_dir(path.parent)
    with tempfile.TemporaryDirectory(prefix="parse-", dir=path.parent) as scratch:
        # Parsing needs no connection, but the profile must render: any HUIJU_DBT_* value will do.
        for name, value in {"HUIJU_DBT_HOST": "localhost", "HUIJU_DBT_PORT": "5432"}.items():
            os.environ.setdefault(name, value)
        run_dbt_offline(["parse"], target_path=Path(scratch))
        os.replace(Path(scratch) / "manifest.json", path)
        partial = Path(scratch) / "partial_parse.msgpack"
        if partial.exists():
            os.replace(partial, path.parent / "partial_parse.msgpack")
    log.info("dbt manifest written to %s", path)
    return path


def run_dbt_offline(args: Sequence[str], *, target_path: Path) -> None:
    """Run a dbt command that needs no database (``parse``, ``ls``) with the project's profile."""
    project = str(get_settings().dbt_project_dir)
    result = _invoke([*args, "--project-dir", project, "--profiles-dir", project,
                      "--target-path", str(target_path), "--log-path", str(dbt_dir() / "logs")])
    if result.exception is not None or not result.success:
        raise TransformError(f"dbt {' '.join(args)} failed: {result.exception or 'see the dbt log'}")


#: A script dbt's docs page would load from the internet: its usage tracker's (Snowplow, from a CDN), inserted
#: by a loader in the page's code whatever ``send_anonymous_usage_stats`` says.
_EXTERNAL_SCRIPT = re.compile(r"""(\.src\s*=\s*)(["'])(?:https?:)?//[^"']*\2""")


def offline_docs_page(html: str) -> str:
    """dbt's docs page with nothing to load from another host: a government intranet has no internet, and the
    page must not try (the tracker's script becomes an empty ``data:`` script)."""
    return _EXTERNAL_SCRIPT.sub(r"\1\2data:text/javascript,\2", html)


def generate_docs(url: str | None = None) -> Path:
    """``dbt docs generate`` (with the warehouse catalog) into ``var/dbt/docs``; returns that folder.

    The page is written by :func:`offline_docs_page`: it loads nothing from another host.
    """
    target = docs_dir()
    with tempfile.TemporaryDirectory(prefix="docs-", dir=dbt_dir()) as scratch:
        run_dbt(["docs", "generate"], url, target_path=Path(scratch))
        fresh = Path(scratch)
        if (fresh / "index.html").exists():
            page = fresh / "index.html"
            page.write_text(offline_docs_page(page.read_text(encoding="utf-8")), encoding="utf-8")
        private_dir(target)
        for name in ("index.html", "manifest.json", "catalog.json"):
            if (fresh / name).exists():
                shutil.copyfile(fresh / name, target / f".{name}.tmp")
                os.replace(target / f".{name}.tmp", target / name)
    return target


#: The scheduled build's selection flags: seeds, models, snapshots and their data tests. dbt unit
#: tests check the models' SQL against fixed inputs, not the day's data, so they run where the SQL
#: changes — in CI (tests/dbt) and in a plain ``dbt build`` by hand — and not in every daily build
#: (as dbt advises for production runs). The transform DAG's per-node Cosmos tasks add the same flags.
#: ``--indirect-selection buildable``: a node's task runs only the tests whose every parent it has
#: built, itself or upstream — with dbt's default (eager) a seed's task would run the relationship
#: test of a model not yet built (e.g. on the first day of a new model). The whole build selects
#: every test either way.
SCHEDULED_BUILD_FLAGS = ("--exclude-resource-type", "unit_test", "--indirect-selection", "buildable")

#: The scheduled build in one dbt invocation. ``--no-write-json``: dbt would write the whole
#: manifest.json twice per build (before and after the nodes, ~1.3 MB each time; a daily build
#: spends ~0.4 s of its ~8 s on it) although nothing reads it — the transform DAG reads the one
#: :func:`ensure_manifest` keeps — so it is skipped; :func:`run_dbt` still writes run_results.json.
#: Partial parsing is unaffected (``partial_parse.msgpack`` is written whatever this flag says).
SCHEDULED_BUILD = ("build", *SCHEDULED_BUILD_FLAGS, "--no-write-json")


def scheduled_build(url: str | None = None, *args: str, target_path: Path | None = None) -> object:
    """:data:`SCHEDULED_BUILD` in one dbt invocation, each dbt thread keeping its connection between nodes.

    ``args`` are added (e.g. ``--full-refresh``). Returns dbt's run results.
    """
    return run_dbt([*SCHEDULED_BUILD, *args], url, target_path=target_path, keep_connections=True)


def build(url: str | None = None, *args: str) -> None:
    """The whole warehouse (:func:`scheduled_build`), the manifest the transform DAG renders parsed first."""
    ensure_manifest()
    scheduled_build(url, *args)
