"""Replay (重放): land archived originals again, through the same path as their first delivery.

Every landing stores, beside the original it archived, a *manifest* of the load
(:func:`huiju.archive.archive_manifest`: ``<archive>/loads/<source id>/<load id>.json``): the
source, the reference, where the original is and the arguments the landing took. A replay
reads manifests — of one load, of a source over a range of delivery days, or of every source
since a day — and hands each original to the landing function that first landed it
(:func:`~huiju.landing.land_file` for a file, :func:`~huiju.landing.land_records` for a
database extract or a portal entry, :func:`~huiju.landing.land_record_batches` for a page of a
REST or SOAP interface or of a department's website), then validates and publishes what it landed,
as the source's ingest run does (:mod:`huiju.pipeline`). So:

* the rows, their row numbers, the quarantined rows and their reasons are the first
  delivery's: the load id comes from the same content, the rows from the same bytes;
* into a warehouse that still holds a load, a replay changes nothing (the load is
  ``already_landed``; nothing is validated or published again, no cursor moves);
* into an empty warehouse (restore from the archive alone) it rebuilds ``raw``,
  ``quarantine.rows`` and the ledger (``ops.loads``, with each batch's delivery time).

A replay is not a delivery: no feedback workbook or notice goes to the department again, and
a source's cursor is left where it is. Pages of the REST, SOAP and web channels are archived in
packs, a group of pages at a time, with one manifest per group
(:func:`huiju.archive.archive_pages_manifest`); the channel's ``archived_page_records`` decodes a
page's archived body as the channel did (a web page: its table found and read again, refused when
it no longer reads as it did), and :func:`huiju.channels.webservice.land_archived_page` lands the
records it first landed. Pages landed before those manifests were written have none and cannot be
replayed (a load without a manifest is named in the error).
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import psycopg

from huiju.archive import archived_path, read_archived, read_manifests, read_rows_archive, records_of_text
from huiju.landing import LandResult, land_file, land_records
from huiju.monitoring.ledger import record_source
from huiju.registry import Registry, load_registry
from huiju.settings import TIMEZONE
from huiju.validation import publish_load, validate_load
from huiju.warehouse import connect

log = logging.getLogger(__name__)


class ReplayError(RuntimeError):
    """What was asked cannot be replayed (no manifest, an unknown source, a page format not replayable)."""


@dataclass(frozen=True)
class Replayed:
    """One load replayed: what landing made of it and the ledger status it ended in."""

    load_id: str
    source_id: str
    reference: str
    outcome: str  # as LandResult.outcome: landed | already_landed | repeat | failed
    rows_received: int
    status: str | None = None  # the ledger status after validation and publication (None: not landed now)


def source_of_load(load_id: str) -> str:
    """The source id a load id names (``<source id>-<16 hex digits>``, :func:`huiju.ledger.make_load_id`)."""
    source_id, _, digest = load_id.rpartition("-")
    if not source_id or len(digest) != 16:
        raise ReplayError(f"{load_id!r} is not a load id (<source id>-<16 hex digits>)")
    return source_id


def delivery_day(manifest: dict) -> date:
    """The day (Asia/Shanghai) a load was delivered, as its manifest records it."""
    return datetime.fromisoformat(manifest["received_at"]).astimezone(ZoneInfo(TIMEZONE)).date()


def select_manifests(*, load_id: str | None = None, source_id: str | None = None, since: date | None = None,
                     until: date | None = None) -> list[dict]:
    """The manifests to replay, in delivery order: one load, or a source's (or every source's) over a range.

    ``since`` and ``until`` bound the delivery day (Asia/Shanghai), both inclusive. A selection
    without a load id needs ``since`` (a replay of everything ever received is never implied).
    """
    if source_id is not None and since is None:
        raise ReplayError(f"{source_id}: say from which day to replay the source's loads")
    if source_id is not None and source_id not in load_registry().sources:
        raise ReplayError(f"{source_id}: no such source in the configuration (config/departments/)")
    if load_id is None and since is None:
        raise ReplayError("say what to replay: a load id, or a day to replay from (with a source and an end day "
                          "to narrow it)")
    if load_id is not None:
        manifests = [m for m in read_manifests(source_of_load(load_id)) if m["load_id"] == load_id]
        if not manifests:
            raise ReplayError(f"{load_id}: no replay manifest in the archive (a load archived before replay "
                              "manifests were written)")
        return manifests
    manifests = [m for m in read_manifests(source_id)
                 if (since is None or delivery_day(m) >= since) and (until is None or delivery_day(m) <= until)]
    return sorted(manifests, key=lambda m: (m["received_at"], m.get("first_row_no", 1), m["load_id"]))


def replay_load(conn: psycopg.Connection, registry: Registry, manifest: dict) -> LandResult:
    """Land one archived original again, as its manifest describes its first landing."""
    source = registry.source(manifest["source_id"])
    data_date = date.fromisoformat(manifest["data_date"]) if manifest.get("data_date") else None
    received_at = datetime.fromisoformat(manifest["received_at"])
    if manifest["kind"] == "file":
        return land_file(conn, registry, source, archived_path(manifest["archive_path"]),
                         reference=manifest["reference"], data_date=data_date, received_at=received_at)
    if manifest["kind"] == "page":  # a REST, SOAP or web page: decoded by its channel, landed as it lands pages
        # why: a page channel's module imports its protocol library (zeep, the REST client, lxml): only for pages
        from huiju.channels.webservice import land_archived_page

        payload = read_archived(manifest["archive_path"])
        channel = importlib.import_module(f"huiju.channels.{manifest['channel']}")  # rest | soap | web
        try:
            records = channel.archived_page_records(source, manifest, payload)
        except ValueError as exc:  # the archived page does not decode as it did: retrying cannot help
            raise ReplayError(str(exc)) from exc
        return land_archived_page(conn, registry, manifest, payload, records)
    payload = read_archived(manifest["archive_path"])
    records, chunks = _records_of(manifest, payload)
    reject = None
    if manifest.get("reject"):
        from huiju.channels.frontdb.source import mojibake_reason  # why: only front-end database batches reject

        reject = mojibake_reason
    result = land_records(conn, registry, source, reference=manifest["reference"],
                          content_id=manifest["content_id"], records=records, chunks=chunks, payload=payload,
                          data_date=data_date, first_row_no=manifest.get("first_row_no", 1),
                          warnings=manifest.get("warnings", []), quiet_extra=manifest.get("quiet_extra", []),
                          reject=reject)
    if result.outcome == "landed":  # the delivery's own time, as land_file keeps a file's
        with conn.transaction():
            conn.execute("update ops.loads set received_at = %s where load_id = %s", (received_at, result.load_id))
    return result


def _records_of(manifest: dict, payload: bytes) -> tuple[list[dict], list[bytes] | None]:
    """(records, COPY chunks) of an archived batch of records: a database extract or a portal entry."""
    rows = read_rows_archive(payload)
    if rows is not None:
        kind, body = rows
        if kind == "copy":
            return [], [body]
        if kind == "records":
            return records_of_text(body), None
        raise ReplayError(f"{manifest['load_id']}: rows archive of unknown kind {kind!r}")
    if manifest.get("channel") == "portal":  # a portal entry: its records as the clerk entered them
        return list(json.loads(payload)["records"]), None
    raise ReplayError(f"{manifest['load_id']}: a {manifest.get('channel')} page cannot be replayed yet")


def replay(manifests: Iterable[dict], registry: Registry | None = None) -> list[Replayed]:
    """Replay loads (see the module docstring); validate and publish the ones landed now.

    Loads land in the order given (:func:`select_manifests` gives delivery order), each in its
    own transaction as at first delivery, then the landed ones are validated and published.
    """
    registry = registry or load_registry()
    landed: list[LandResult] = []
    with connect(role="landing") as conn:
        for manifest in manifests:
            landed.append(replay_load(conn, registry, manifest))
    statuses: dict[str, str] = {}
    with connect(role="validation") as conn:
        for result in landed:
            if result.outcome != "landed":
                continue
            status = validate_load(conn, registry, result.load_id).status
            if status == "validated" and publish_load(conn, result.load_id):
                status = "published"
            statuses[result.load_id] = status
    for source_id in sorted({r.source_id for r in landed if r.load_id in statuses}):
        record_source(registry, source_id)  # the submission ledger (监控) sees the restored batches
    replayed = [Replayed(r.load_id, r.source_id, r.reference, r.outcome, r.rows_received, statuses.get(r.load_id))
                for r in landed]
    log.info("replayed %d load(s): %d landed again", len(replayed), len(statuses))
    return replayed
