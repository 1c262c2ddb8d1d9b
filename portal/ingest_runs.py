"""Asking Airflow for a source's ingest run as soon as a portal submission passed validation.

The portal lands, validates and feeds back a submission in the request; publishing it (the step
whose Asset update starts the warehouse build) is the source's ingest DAG's. Rather than wait
for the source's cadence — a monthly source would publish a clerk's entry weeks later — the
portal asks Airflow's REST API for a run of that DAG now, after the page has been answered:

- ``POST /auth/token`` with the portal's own Airflow account (``HUIJU_PORTAL_AIRFLOW_USER``: the
  simple auth manager's role ``user``, or a FAB role allowed to trigger DAG runs — no
  connections, variables or configuration), then
- ``POST /api/v2/dags/ingest__<source>/dagRuns`` with the run id ``portal__<load id>``, so asking
  twice for the same batch (a repeated request, a retry) is one run: Airflow answers 409 the
  second time.

It is best effort by design: if Airflow is down, the DAG paused, or the account refused, the
request is logged and recorded in ``portal.events`` (``ingest_run_failed``), and the batch —
validated in the ledger — is published by the source's next scheduled run, as before. Without
``HUIJU_PORTAL_AIRFLOW_URL`` nothing is asked.
"""

from __future__ import annotations

import logging

import httpx
import psycopg

from huiju.registry import Source
from huiju_portal import audit
from huiju_portal.config import PortalSettings

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds per request to Airflow's API


class RunNotRequested(RuntimeError):
    """Airflow did not accept the request for a run; the message says what it answered."""


def run_id_for(load_id: str) -> str:
    """The ingest run asked for one portal batch: one per batch, however often it is asked."""
    return f"portal__{load_id}"


def request_ingest_run(settings: PortalSettings, source: Source, load_id: str) -> str:
    """Ask Airflow for ``source``'s ingest run for the batch ``load_id``; ``requested`` or ``already requested``.

    Raises :class:`RunNotRequested` when Airflow refuses, and ``httpx.HTTPError`` when it cannot be reached.
    """
    with httpx.Client(base_url=str(settings.airflow_url).rstrip("/"), timeout=TIMEOUT) as client:
        token = client.post("/auth/token", json={"username": settings.airflow_user,
                                                 "password": settings.airflow_password})
        if token.status_code not in (200, 201):
            raise RunNotRequested(f"Airflow refused the portal's account {settings.airflow_user!r}: "
                                  f"HTTP {token.status_code}")
        answer = client.post(
            f"/api/v2/dags/{source.ingest_dag_id}/dagRuns",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            json={"dag_run_id": run_id_for(load_id), "logical_date": None,
                  "note": f"部门门户：批次 {load_id} 已通过校验，请求立即发布"})
    if answer.status_code == 409:
        return "already requested"
    if answer.status_code != 200:
        raise RunNotRequested(f"Airflow did not start {source.ingest_dag_id}: HTTP {answer.status_code} "
                              f"{answer.text[:300]}")
    return "requested"


def ask_for_publication(settings: PortalSettings, warehouse_url: str, source: Source, load_id: str,
                        username: str) -> None:
    """After a validated submission: ask for the source's ingest run, and record the outcome (never raises).

    Run in the background once the page has been answered (a ``BackgroundTask``).
    """
    if not settings.asks_for_runs:
        return
    detail: dict[str, object] = {"source_id": source.id, "load_id": load_id, "dag_id": source.ingest_dag_id,
                                 "run_id": run_id_for(load_id)}
    try:
        detail["outcome"] = request_ingest_run(settings, source, load_id)
        kind = "ingest_run_requested"
    except (httpx.HTTPError, RunNotRequested, KeyError, ValueError) as exc:
        log.warning("portal: could not ask Airflow for %s (batch %s); its next scheduled run publishes it: %s",
                    source.ingest_dag_id, load_id, exc)
        detail["error"] = str(exc)[:500]
        kind = "ingest_run_failed"
    try:
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            audit.record(conn, kind, username=username, **detail)
    except psycopg.Error:
        log.exception("portal: could not record %s for %s", kind, load_id)
