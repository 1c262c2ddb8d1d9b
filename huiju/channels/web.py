"""The web channel (网络爬虫): a department's public list pages (行政处罚公示, 红黑名单), read as HTML tables.

Configuration (the source's ``web:`` block, :class:`huiju.channel_settings.WebSettings`) says *what*
to read: the first page, how the list pages, how fast, the caps. The source's Airflow Connection
says *where*: the site's base URL (``extra.base_url``, else ``<scheme>://host:port``), as for REST.

A run reads the list from its first page (:func:`huiju_connectors.web.fetch_pages`: robots.txt
honoured, requests spaced, every cap of the other channels) and lands every page as a batch of its
own, like a REST page:

* the table is found by the source's column headers and read like a file's: headers compared
  after normalisation, unmapped columns kept in ``_extra``, the source's footer rule applied
  (a 填表人 or 备注 line under the table is not a record); records are numbered through the list,
  as its 序号 column counts them on the site: the first record of page 2 follows the last of page 1;
* each page is archived as received (its bytes; the pages landed together as one pack, each named
  in the ledger by its place in it, as REST pages are: a file per page cost more than landing it),
  with the group's replay manifest beside the pack (:func:`page_manifest`), so :mod:`huiju.replay`
  can read the page's table from its archived body again (:func:`archived_page_records`); its load id
  derives from
  the page's address and its *table* (header and rows), not its bytes: a page whose list did not
  change is recognised as already landed even when the site stamps the page with the time or a
  visit counter, and a page whose list changed lands again (staging keeps the latest version of
  each record by its natural key);
* pages are fetched, parsed and rendered in a child process while this one lands them, in groups,
  one transaction each (:func:`huiju.landing.land_record_batches`);
* a page that cannot be read (robots.txt forbids it, a cap, hostile markup, no table with the
  columns) stops the run: what came before it is landed, the page is recorded as a failed load
  naming it and what to do, and the error is raised (a transient failure — the site down after
  every retry — is raised without a ledger row; the next run tries again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from huiju_connectors.files import normalise_header
from huiju_connectors.footers import FooterSplitter, footer_text
from huiju_connectors.html_tables import decode_html, read_page
from huiju_connectors.retry import RetryPolicy
from huiju_connectors.web import WebCaps, WebError, WebPage, WebPagination, WebSource, fetch_pages

from huiju.archive import archive_pack, archive_pages_manifest
from huiju.channel_settings import WebSettings
from huiju.channels.connection import base_url, ca_file
from huiju.channels.prefetch import Prefetch
from huiju.landing import LandResult, RecordBatch, land_record_batches, prepare_plain_rows, record_failed
from huiju.landing.files import footer_rule
from huiju.ledger import make_content_id, make_load_id
from huiju.masking import mask_text

if TYPE_CHECKING:
    from huiju.channels import CollectContext
    from huiju.registry import Registry, Source

log = logging.getLogger(__name__)

#: Pages landed in one transaction at most, and for how long a group may gather them.
GROUP_PAGES = 50
GROUP_SECONDS = 5.0


def web_source(ctx: CollectContext) -> WebSource:
    """The connector's ``WebSource`` for this run, from the settings and the Connection."""
    settings: WebSettings = ctx.settings
    url = base_url(ctx.connection, ctx.source.id)
    assert ctx.connection is not None  # base_url raised otherwise
    return WebSource(
        base_url=url, path=settings.path, pagination=WebPagination(**settings.pagination.model_dump()),
        rate_limit=settings.rate_limit, user_agent=settings.user_agent, connect_timeout=settings.connect_timeout,
        read_timeout=settings.timeout, ca_bundle=ca_file(settings.ca_file, ctx.connection),
        retry=RetryPolicy(attempts=settings.attempts), name=ctx.source.id, caps=WebCaps(**settings.caps))


def required_headers(registry: Registry, source: Source) -> list[str]:
    """The headers a page's table must have: those of the source's required fields."""
    dataset = registry.dataset_of(source)
    return [header for header, field in source.columns.items() if dataset.field(field).required]


def page_batch(source: Source, page: WebPage, rows_before: int, *, as_records: bool = False) -> RecordBatch | None:
    """A page's table as a batch to land (None when it holds no record): records keyed by the source's
    own headers and numbered after the ``rows_before`` records of the pages before it, the footer left out
    (and named in the warnings), the load id from the page's address, numbering and table.

    ``as_records``: the records as dicts even for the common page (a replay hands them to
    :func:`huiju.channels.webservice.land_archived_page`); otherwise that page comes as COPY text.
    """
    table = page.table
    assert table is not None  # the connector yields only pages with their table
    configured = {normalise_header(h): h for h in source.columns}
    keys = [configured.get(normalise_header(cell), cell.strip() or f"第{i + 1}列")
            for i, cell in enumerate(table.header)]
    rule = footer_rule(source)
    rows = table.rows
    warnings: list[str] = []
    if rule is not None:
        splitter = FooterSplitter(rows, rule)
        rows = list(splitter)
        if splitter.footer:
            warnings.append(f"{len(splitter.footer)} footer row(s) below the table not landed (table rows "
                            f"{splitter.footer[0][0]}-{splitter.footer[-1][0]}): {footer_text(splitter.footer)}")
    if not rows:
        return None
    content_id = make_content_id(page.reference, str(rows_before + 1),
                                 json.dumps([table.header, [cells for _, cells in rows]], ensure_ascii=False))
    batch = RecordBatch(reference=page.reference, content_id=content_id, records=[], payload=page.body,
                        first_row_no=rows_before + 1, warnings=tuple(warnings))
    # The common page — only configured columns filled — goes straight to COPY text, without a dict per record.
    position = {key: index for index, key in enumerate(keys) if key in source.columns}
    others = [index for index, key in enumerate(keys) if key not in source.columns]
    if not as_records and not any(index < len(cells) and cells[index] for _, cells in rows for index in others):
        mapped = [position.get(header) for header in source.columns]
        values = [tuple(cells[i] if i is not None and i < len(cells) else None for i in mapped) for _, cells in rows]
        prepared = prepare_plain_rows(source, page.reference, content_id, values, rows_before + 1)
        if prepared is not None:
            return replace(batch, rows=prepared)
    records = [{key: value for key, value in zip(keys, cells, strict=False) if value is not None}
               for _, cells in rows]
    return replace(batch, records=records)


def _prepared(source: Source, pages: Iterator[WebPage]) -> Iterator[tuple[RecordBatch, str | None]]:
    """Every page with records, as a batch ready to land, numbered after the pages before it, with the page's
    ``Content-Type`` (how its body is decoded again on replay)."""
    rows_before = 0
    for page in pages:
        batch = page_batch(source, page, rows_before)
        if batch is not None:
            rows_before += batch.count
            yield batch, page.content_type


def page_manifest(ctx: CollectContext, received_at: datetime, wanted: list[str],
                  pages: list[tuple[RecordBatch, str | None]]) -> dict:
    """What :mod:`huiju.replay` needs to land a group's pages again from the archive alone: per page its load,
    address, place in the pack, ``Content-Type``, first row number and warnings; for the group the headers its
    table was found by and the records cap it was read with (:func:`archived_page_records`)."""
    source = ctx.source
    settings: WebSettings = ctx.settings
    return {"kind": "page", "source_id": source.id, "channel": source.channel, "data_date": ctx.data_date,
            "received_at": received_at.isoformat(), "wanted": wanted, "max_records": settings.max_page_records,
            "pages": [{"load_id": make_load_id(source.id, batch.content_id), "reference": batch.reference,
                       "content_id": batch.content_id, "archive_path": batch.archived[1] if batch.archived else None,
                       "content_type": content_type, "first_row_no": batch.first_row_no,
                       "warnings": list(batch.warnings)} for batch, content_type in pages]}


def archived_page_records(source: Source, manifest: dict, payload: bytes) -> list[dict[str, object]]:
    """The records an archived page (its body as received) landed, as :func:`collect` first read them: decoded
    with its ``Content-Type``, its table found by the same headers, the source's footer rule applied, numbered
    from its first row number (replay; nothing is fetched). A page that no longer reads as it first did (the
    source's columns or footer rule changed since) is refused: its content id would differ."""
    try:
        html = read_page(decode_html(payload, manifest["content_type"]), url=manifest["reference"],
                         wanted=manifest["wanted"], max_records=manifest["max_records"], links=False)
    except ValueError as exc:  # HtmlRefused: the page read at first delivery, so the archive is not what it was
        raise ValueError(f"{manifest['load_id']}: the archived page cannot be read again: {exc}") from None
    page = WebPage(0, manifest["reference"], manifest["reference"], payload, manifest["content_type"], html.table,
                   html.tables)
    batch = page_batch(source, page, manifest["first_row_no"] - 1, as_records=True) if html.table else None
    if batch is None or batch.content_id != manifest["content_id"]:
        raise ValueError(f"{manifest['load_id']}: the archived page {manifest['reference']} no longer reads as it "
                         "did when it landed (the source's columns or footer rule changed since); it cannot be "
                         "replayed with this configuration")
    return list(batch.records)


def collect(ctx: CollectContext) -> list[LandResult]:
    """Read the source's list pages and land each page that is new or changed (see the module docstring).

    Pages are fetched, parsed and rendered as COPY text in a child process
    (:class:`~huiju.channels.prefetch.Prefetch`, as REST pages are) while this one lands them.
    """
    source = ctx.source
    wanted = required_headers(ctx.registry, source)
    ctx.conn.commit()  # no transaction left open while pages are fetched
    results: list[LandResult] = []
    group: list[tuple[RecordBatch, str | None]] = []
    opened = time.monotonic()

    def land(durable: bool) -> None:
        nonlocal group
        if group:
            bodies = [batch.payload or b"" for batch, _ in group]
            digests = [hashlib.sha256(body).hexdigest() for body in bodies]
            packed = archive_pack(bodies, digests)
            group = [(replace(batch, archived=(digest, reference)), content_type)
                     for (batch, content_type), digest, reference in zip(group, digests, packed, strict=True)]
            arrived = datetime.now(UTC)  # the ledger's received_at, and the replay manifest's
            archive_pages_manifest(page_manifest(ctx, arrived, wanted, group))
            results.extend(land_record_batches(ctx.conn, ctx.registry, source, [batch for batch, _ in group],
                                               data_date=ctx.data_date, durable=durable, received_at=arrived))
        group = []

    feed: Prefetch[tuple[RecordBatch, str | None]] = Prefetch(
        _prepared(source, fetch_pages(web_source(ctx), wanted)), lambda b: b)
    try:
        while True:
            item = feed.next(timeout=(opened + GROUP_SECONDS - time.monotonic()) if group else GROUP_SECONDS)
            if item is None:
                break
            if item is Prefetch.LATER:
                land(durable=False)  # a slow site: what came lands without waiting for more
                continue
            assert isinstance(item, tuple)
            if not group:
                opened = time.monotonic()
            group.append(item)
            if len(group) >= GROUP_PAGES:
                land(durable=False)
    except WebError as exc:
        land(durable=True)
        if not exc.retryable:
            _record_refusal(ctx, exc)
        raise
    finally:
        feed.close()
    land(durable=True)
    unchanged = sum(r.outcome == "already_landed" for r in results)
    log.info("%s: %d page(s) read, %d new or changed, %d unchanged", source.id, len(results),
             len(results) - unchanged, unchanged)
    return results


def _record_refusal(ctx: CollectContext, error: WebError) -> None:
    """A page the platform does not read, as a failed load naming it (a rerun meeting it updates the same row)."""
    source = ctx.source
    reference = error.url or source.id
    message = mask_text(f"{source.id}: {reference}: 网页无法采集，采集已停止，请核对后处理: {error}")
    record_failed(ctx.conn, ctx.registry, source, reference=reference,
                  content_id=make_content_id("web", reference, str(error)), error=message, data_date=ctx.data_date)
