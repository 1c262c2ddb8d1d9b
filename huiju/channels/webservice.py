"""What the REST and SOAP channels share: settings blocks, the Connection, and landing pages.

Both connectors yield :class:`huiju_connectors.rest.Page` objects from the same paging engine;
:func:`land_pages` lands them, so both channels give the same guarantees:

* a run starts from the source's stored cursor (``ops.cursors``). The cursor's contract is
  :mod:`huiju_connectors.rest`'s: a ``position`` resumes an interrupted run right after its
  last landed page; a null position means the last run finished, and the next one opens a new
  incremental window from the stored watermark (non-incremental sources read from page one
  again; identical pages are recognised as already landed);
* every page with records is landed with :func:`huiju.landing.land_record_batches` — records,
  payload (archived as received, in a pack with the pages landed beside it) and the page's
  cursor in one transaction, the load id derived from sha256(payload + reference), so a rerun
  or a crash never lands a page twice;
* a page without new records (the final empty page, or only records landed before) creates no
  ledger row: only its cursor is saved. It covers no data, so the cursor is still never ahead
  of landed data, and the ledger holds only batches someone can validate;
* pages are fetched and prepared ahead in a child process while earlier ones land; pages land in
  groups, one transaction and one archive pack per group (group commit, see :func:`land_pages`).
  The two processes share the work: the fetcher requests each page and hashes it; the REST
  connector checks a JSON body without decoding its records whole (each an object, the status
  and token where expected; only the fields the watermark needs are decoded) and leaves them in
  it, and the landing process decodes them once, straight into COPY text, checking them for
  drift on the way (:func:`_render_from_body`) — the fetcher, which with the department's
  server sets the pace, stays short, and no record is decoded twice. A body the check refuses,
  and every SOAP page, is decoded and checked by the fetcher as before;
* each page's fields are compared with the configured ones (:func:`check_drift`): with
  ``drift: warn`` differences are stored as the load's warnings (unknown fields are kept in
  ``_extra``: nothing is lost); with ``drift: hold`` the drifted page is recorded in the ledger
  as ``held`` with the reason, nothing of it reaches ``raw``, the cursor stays before it and the
  run ends without failing; once a steward updates the configuration, the next run lands it.

Row numbers continue through a run: a page's new records are numbered after every new record
the run received before them — across pages and across the fresh queries an advancing
watermark starts (records dropped as landed before take no number) — so a row number names
one record of the run, in the order the department sent them. The count travels in the
cursor (``rows_before``), so a run resumed after a crash continues it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from huiju_connectors.rest import (
    Incremental,
    Page,
    SchemaDrift,
    check_drift,
    page_records,
    plain_records,
)

from huiju.archive import archive_pack, archive_pages_manifest
from huiju.channel_settings import IncrementalSettings
from huiju.channels.prefetch import Prefetch
from huiju.landing import (
    LandResult,
    PreparedRows,
    RecordBatch,
    land_record_batches,
    prepare_plain_rows,
    prepare_rows,
    record_failed,
)
from huiju.ledger import make_content_id, make_load_id
from huiju.masking import mask_text

if TYPE_CHECKING:
    import psycopg

    from huiju.channels import CollectContext
    from huiju.registry import Registry, Source

log = logging.getLogger(__name__)

#: Cursor key (beside the connector's) with the number of records the run fetched so far.
ROWS_BEFORE = "rows_before"

#: Pages landed in one transaction at most, and for how long a group may gather them.
GROUP_PAGES = 50
GROUP_SECONDS = 0.5


def incremental_of(settings: IncrementalSettings | None) -> Incremental | None:
    """The connector's ``Incremental`` for a block's ``incremental:`` settings (None: not incremental)."""
    if settings is None:
        return None
    return Incremental(settings.since_param, settings.updated_at_field, tuple(settings.key_fields),
                       settings.initial_since)


def expected_fields(columns: dict[str, str], incremental: IncrementalSettings | None,
                    known: tuple[str, ...]) -> list[str]:
    """Top-level fields a record is expected to have: mapped columns, incremental fields, known extras."""
    names = list(columns) + list(known)
    if incremental is not None:
        names += [incremental.updated_at_field.split(".")[0], *(k.split(".")[0] for k in incremental.key_fields)]
    return list(dict.fromkeys(names))


def page_hashes(page: Page) -> tuple[str, str]:
    """A page's identity and its archive name, in one pass over the body.

    The identity (content id) is the sha256 of the body as received and the request that
    produced it; the archive name is the sha256 of the body alone.
    """
    body = hashlib.sha256(page.raw_bytes)
    identity = body.copy()
    identity.update(b"\x00" + page.reference.encode("utf-8"))
    return identity.hexdigest(), body.hexdigest()


@dataclass(frozen=True)
class _Prepared:
    """A page made ready to land by the fetching process: hashes, row numbers and, as it can, the rest.

    ``page`` keeps its body and cursor; its records travel only as ``rows`` (COPY text), except
    on a held page, which lands none of them, and on a page the connector left in its body
    (records in the JSON list at ``render_from``): the landing process decodes, checks (drift)
    and renders those itself (:func:`_render_from_body`), which costs less than sending them.
    ``rows_after``: records the run received up to and including this page.
    """

    page: Page
    page_id: str
    sha256: str
    first_row_no: int
    rows_after: int
    warnings: tuple[str, ...] = ()
    held: str | None = None
    rows: PreparedRows | None = None
    render_from: str | None = None


def _held_reason(source: Source, page: Page, error: Exception) -> str:
    return (f"{source.id}: {page.reference}: 接口返回的字段与登记的不一致，本页已暂停入库，"
            f"请核对后更新配置（schema drift, policy hold）: {error}")


def _prepare_pages(source: Source, pages: Iterator[Page], expected_fields: list[str], drift: str,
                   rows_before: int, records_path: str | None) -> Iterator[_Prepared]:
    """Every page the connector yields, prepared to land.

    The first page whose fields drifted under ``drift: hold`` is the last: it is held.
    ``records_path``: where a JSON body holds its records (REST): a page the connector left in
    its body (``Page.in_body``) is checked for drift and rendered from it by the landing
    process. Every other page (SOAP's; a body the connector decoded whole) is checked and
    rendered here.
    """
    for page in pages:
        page_id, sha256 = page_hashes(page)  # hashing releases the interpreter lock
        first_row_no = rows_before + 1
        count = page.record_count
        rows_before += count
        if page.in_body:
            yield _Prepared(page, page_id, sha256, first_row_no, rows_before,
                            render_from=records_path if count else None)
            continue
        try:
            warnings = check_drift(page.records, expected_fields, drift)  # type: ignore[arg-type]
        except SchemaDrift as exc:
            yield _Prepared(page, page_id, sha256, first_row_no, first_row_no - 1, held=_held_reason(source, page, exc))
            return
        rows = (prepare_rows(source, RecordBatch(page.reference, page_id, page.records, first_row_no=first_row_no))
                if page.records else None)
        yield _Prepared(replace(page, records=[]), page_id, sha256, first_row_no, rows_before, tuple(warnings),
                        rows=rows)


def _render_from_body(source: Source, expected_fields: list[str], drift: str, prepared: _Prepared) -> _Prepared:
    """A page whose records the connector left in its body, checked for drift and rendered to COPY text here.

    The common page — every record exactly the mapped fields, text or null — is decoded straight
    into value tuples (:func:`_plain_page_decoder`, no dict per record); any other is decoded by
    the connector (:func:`huiju_connectors.rest.page_records`). Either way they are the records
    the connector would have yielded. A page whose fields drifted under ``drift: hold`` is held.
    """
    if prepared.render_from is None:  # the fetcher rendered it (or it lands no record)
        return prepared
    page = prepared.page
    path = prepared.render_from
    records = None
    # A body without a backslash holds no escape, so none of its values holds a character COPY
    # text escapes (JSON forbids raw control characters, and the decoder refuses them).
    copy_ready = b"\\" not in page.raw_bytes
    values = plain_records(page, tuple(source.columns), path)
    if values is None:
        records = page_records(page, path)
    try:
        present = records if values is None else [dict.fromkeys(source.columns)] if values else []
        warnings = tuple(check_drift(present, expected_fields, drift))
    except SchemaDrift as exc:
        return replace(prepared, held=_held_reason(source, page, exc), rows_after=prepared.first_row_no - 1,
                       render_from=None)
    rows = None
    if values is not None:
        rows = prepare_plain_rows(source, page.reference, prepared.page_id, values, prepared.first_row_no,
                                  copy_ready=copy_ready)
    if rows is None:  # a value needs escaping: the general path renders it
        records = records if records is not None else page_records(page, path)
        rows = prepare_rows(source, RecordBatch(page.reference, prepared.page_id, records,
                                                first_row_no=prepared.first_row_no))
    return replace(prepared, rows=rows, warnings=warnings, render_from=None)


@dataclass
class _Group:
    """Pages gathered to land in one transaction, and the cursor after them."""

    pages: list[_Prepared] = field(default_factory=list)
    cursor: dict | None = None

    def batches(self, ctx: CollectContext, received_at: datetime, records_path: str | None) -> list[RecordBatch]:
        """The group's batches, their pages archived as one pack first (see :mod:`huiju.archive`), with the
        group's replay manifest (:func:`page_manifest`) beside it."""
        references = (archive_pack([p.page.raw_bytes for p in self.pages], [p.sha256 for p in self.pages])
                      if self.pages else [])
        batches = [RecordBatch(p.page.reference, p.page_id, p.page.records, p.page.raw_bytes,
                               first_row_no=p.first_row_no, warnings=p.warnings, held=p.held,
                               archived=(p.sha256, reference), rows=p.rows)
                   for p, reference in zip(self.pages, references, strict=True)]
        landing = [(p, b) for p, b in zip(self.pages, batches, strict=True) if p.held is None]
        if landing:
            archive_pages_manifest(page_manifest(ctx, received_at, records_path, landing))
        return batches


def page_manifest(ctx: CollectContext, received_at: datetime, records_path: str | None,
                  pages: list[tuple[_Prepared, RecordBatch]]) -> dict:
    """What :mod:`huiju.replay` needs to land a group's pages again from the archive alone: per page its load,
    request, place in the pack, first row number, drift warnings and which of the body's records it landed
    (``kept``: an incremental source drops those landed before); for the group the channel's decoding
    (REST: where the body holds its records; SOAP: the operation and the records' path in its reply)."""
    source = ctx.source
    decoding = ({"records_path": records_path} if source.channel == "rest"
                else {"operation": ctx.settings.operation, "records_path": ctx.settings.records_path})
    return {"kind": "page", "source_id": source.id, "channel": source.channel, "data_date": ctx.data_date,
            "received_at": received_at.isoformat(), **decoding,
            "pages": [{"load_id": make_load_id(source.id, p.page_id), "reference": p.page.reference,
                       "content_id": p.page_id, "archive_path": batch.archived[1] if batch.archived else None,
                       "first_row_no": p.first_row_no, "warnings": list(p.warnings),
                       "kept": list(p.page.kept) if p.page.kept is not None else None,
                       "fetched": p.page.fetched_count} for p, batch in pages]}


def land_pages(ctx: CollectContext, pages: Iterator[Page], *, start_cursor: dict | None, drift: str,
               expected_fields: list[str], records_path: str | None = None) -> list[LandResult]:
    """Land every page the connector yields, each with its cursor (see the module docstring).

    Pages are fetched and prepared in a child process (:class:`~huiju.channels.prefetch.Prefetch`); ``records_path``
    (REST: where the JSON body holds its records) lets this process render a page's records
    from its body instead of receiving them. Group commit: pages
    land together in one transaction with :func:`huiju.landing.land_record_batches` — each
    page still its own load with its own ledger row — with the cursor after the group's last
    page, and their originals are archived as one pack just before. A group closes at
    :data:`GROUP_PAGES` pages, or :data:`GROUP_SECONDS` after it opened (however slow the
    department is, a page waits no longer than that to land), or at the end of the run. A
    crash loses a group's data and cursor together, so it is fetched again and still landed
    exactly once. Every group but the run's last commits without waiting for the WAL flush;
    the last one's durable commit covers them all (see ``durable`` in
    :func:`~huiju.landing.land_record_batches`).
    """
    source = ctx.source
    results: list[LandResult] = []
    start = start_cursor or {}
    position = start.get("position")  # of the next request: where a refusal is reported
    rows_before = int(start.get(ROWS_BEFORE, 0)) if position is not None else 0
    failure: BaseException | None = None
    feed = Prefetch(_prepare_pages(source, pages, expected_fields, drift, rows_before, records_path),
                     functools.partial(_render_from_body, source, expected_fields, drift))
    try:
        finished = False
        while not finished:
            group = _Group()
            opened = time.monotonic()
            while len(group.pages) < GROUP_PAGES:
                try:
                    item = feed.next(timeout=opened + GROUP_SECONDS - time.monotonic())
                except Exception as exc:  # the connector failed: land what is here, then report it
                    failure, finished = exc, True
                    break
                if item is None:
                    finished = True
                    break
                if item is Prefetch.LATER:
                    if group.pages or group.cursor is not None:
                        break
                    opened = time.monotonic()  # nothing to land yet: a new group opens with the next page
                    continue
                assert isinstance(item, _Prepared)
                if item.held is not None:  # the cursor stays before it
                    group.pages.append(item)
                    finished = True
                    break
                position = item.page.next_cursor.get("position")
                group.cursor = dict(item.page.next_cursor)
                if position is not None:
                    group.cursor[ROWS_BEFORE] = item.rows_after
                if item.rows is not None:
                    group.pages.append(item)
            if group.pages or group.cursor is not None:
                arrived = datetime.now(UTC)  # the ledger's received_at, and the replay manifest's
                results += land_record_batches(ctx.conn, ctx.registry, source,
                                               group.batches(ctx, arrived, records_path), cursor=group.cursor,
                                               data_date=ctx.data_date, durable=finished, received_at=arrived)
    finally:
        feed.close()
    if failure is not None:
        if getattr(failure, "retryable", True) is False:
            _record_refusal(ctx, failure, position)
        raise failure
    return results


def land_archived_page(conn: psycopg.Connection, registry: Registry, manifest: dict, payload: bytes,
                       records: list[dict]) -> LandResult:
    """Land an archived page again, as its replay manifest (:func:`page_manifest`) describes its first landing.

    ``records``: the page's records decoded from ``payload`` (its body as received) by its channel, as the
    channel first decoded them (``archived_page_records`` of :mod:`huiju.channels.rest` and
    :mod:`huiju.channels.soap`: the records the page landed, ``kept``; of :mod:`huiju.channels.web`: the
    page's table read again, with the manifest of :func:`huiju.channels.web.page_manifest`). Landed by
    :func:`huiju.landing.land_record_batches` as at first delivery: same load id, row numbers, warnings and
    time of delivery. Nothing is fetched from the department.
    """
    source = registry.source(manifest["source_id"])
    batch = RecordBatch(manifest["reference"], manifest["content_id"], records, payload,
                        first_row_no=manifest["first_row_no"], warnings=tuple(manifest.get("warnings", ())),
                        archived=(hashlib.sha256(payload).hexdigest(), manifest["archive_path"]))
    data_date = date.fromisoformat(manifest["data_date"]) if manifest.get("data_date") else None
    [result] = land_record_batches(conn, registry, source, [batch], data_date=data_date,
                                   received_at=datetime.fromisoformat(manifest["received_at"]))
    return result


def kept_records(records: list[dict], manifest: dict) -> list[dict]:
    """The records of a page's body that the page landed (its manifest's ``kept``; all when None)."""
    kept = manifest.get("kept")
    return records if kept is None else [records[i] for i in kept]


def _record_refusal(ctx: CollectContext, error: BaseException, position: object) -> None:
    """Record a terminal refusal (a business fault, a 4xx, a malformed answer) as a failed load.

    The department's own words stay in the ledger, where stewards and the department's summary
    see failed batches; the load id derives from the request position and the message, so a
    rerun meeting the same refusal updates the same row.
    """
    source = ctx.source
    reference = f"{source.id} @ {json.dumps(position, ensure_ascii=False, sort_keys=True)}"
    words = getattr(error, "gateway_message", None)
    said = f"（接口答复：{words}）" if words else ""
    message = mask_text(f"{source.id}: {reference}: 接口拒绝了请求或返回了无法使用的应答，采集已停止，"
                        f"请核对后处理（terminal, not retried）: {error}{said}")
    record_failed(ctx.conn, ctx.registry, source, reference=reference,
                  content_id=make_content_id(reference, str(error)), error=message, data_date=ctx.data_date)
