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
* pages are fetched (and hashed) ahead in a thread while earlier ones land; pages land in
  groups, one transaction and one archive pack per group (group commit, see :func:`land_pages`);
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

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from huiju_connectors.rest import Incremental, Page

    from huiju.channels import CollectContext, ConnectionInfo
    from huiju.landing import LandResult, RecordBatch

log = logging.getLogger(__name__)

#: Cursor key (beside the connector's) with the number of records the run fetched so far.
ROWS_BEFORE = "rows_before"

#: Pages landed in one transaction at most, and for how long a group may gather them.
GROUP_PAGES = 50
GROUP_SECONDS = 0.5


class Block(BaseModel):
    """Base of the channels' settings blocks: unknown keys are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class IncrementalSettings(Block):
    """Incremental reads by an updated-since parameter (inclusive, ordered by update time)."""

    since_param: str = Field(min_length=1)
    updated_at_field: str = Field(min_length=1)
    key_fields: tuple[str, ...] = Field(min_length=1)
    initial_since: str | None = None

    def connector(self) -> Incremental:
        """The connector's ``Incremental`` for these settings."""
        from huiju_connectors.rest import Incremental

        return Incremental(self.since_param, self.updated_at_field, tuple(self.key_fields), self.initial_since)


def base_url(connection: ConnectionInfo | None, source_id: str) -> str:
    """The service's base URL from the source's Connection (``extra.base_url`` or scheme://host:port)."""
    if connection is None:
        raise ValueError(f"{source_id}: no Connection resolved; set `connection:` in the source's config "
                         "and define that Airflow Connection")
    explicit = connection.extra.get("base_url")
    if explicit:
        return str(explicit).rstrip("/")
    if not connection.host:
        raise ValueError(f"{source_id}: Connection {connection.conn_id!r} has no host (and no extra.base_url)")
    if "://" in connection.host:
        url = connection.host.rstrip("/")
    else:
        scheme = connection.extra.get("scheme") or (connection.schema if connection.schema in ("http", "https")
                                                     else "https")
        url = f"{scheme}://{connection.host}"
    return f"{url}:{connection.port}" if connection.port else url


def config_path(relative: str) -> str:
    """A path from the configuration, relative to ``config/`` unless absolute."""
    from huiju.settings import get_settings

    path = Path(relative)
    return str(path if path.is_absolute() else get_settings().config_dir / path)


def ca_bundle(configured: str | None, connection: ConnectionInfo) -> str | None:
    """The CA bundle file to verify the service against: the settings', else the Connection's ``extra``."""
    chosen = configured or connection.extra.get("ca_bundle")
    return config_path(chosen) if chosen else None


def secret(connection: ConnectionInfo, name: str, field_value: str | None) -> str:
    """A credential from the Connection (its field, else ``extra[name]``), or a clear error."""
    value = field_value or connection.extra.get(name)
    if not value:
        raise ValueError(f"Connection {connection.conn_id!r} lacks {name}")
    return str(value)


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


class _Prefetch:
    """Fetch the next pages (and hash them) in a thread while earlier ones land.

    Safe for exactly-once: each page's cursor is computed by the connector from the pages
    before it, not from what was landed, and a page fetched but never landed (crash, error)
    is simply fetched again by the next run.
    """

    _DONE = object()
    #: What :meth:`next` returns when no page arrived in time.
    LATER = object()

    def __init__(self, pages: Iterator[Page], depth: int = 64) -> None:
        self._pages = pages
        self._slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._produce, name="huiju-prefetch", daemon=True)
        self._worker.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for page in self._pages:
                if not self._put((page, *page_hashes(page))):  # hashing releases the interpreter lock
                    return
            self._put(self._DONE)
        except BaseException as exc:  # handed over to the consumer, raised there
            self._put(exc)
        finally:
            close = getattr(self._pages, "close", None)
            if close is not None:
                close()

    def next(self, timeout: float) -> tuple[Page, str, str] | object | None:
        """The next page with its content id and sha256, ``None`` after the last page.

        :attr:`LATER` when none arrived within ``timeout`` seconds; raises what the connector raised.
        """
        try:
            item = self._slots.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return self.LATER
        if item is self._DONE:
            self._slots.put(item)  # stays the answer
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        """Stop fetching (pages not taken are dropped; the next run fetches them again)."""
        self._stop.set()
        self._worker.join(timeout=30)


@dataclass
class _Group:
    """Pages gathered to land in one transaction: their batches (not yet archived) and the cursor after them."""

    pages: list[tuple[Page, str, str, int, tuple[str, ...], str | None]] = field(default_factory=list)
    cursor: dict | None = None

    def batches(self) -> list[RecordBatch]:
        """The group's batches, their pages archived as one pack first (see :mod:`huiju.archive`)."""
        from huiju.archive import archive_pack
        from huiju.landing import RecordBatch

        kept = [entry for entry in self.pages if entry[0].records]
        references = iter(archive_pack([page.raw_bytes for page, *_ in kept], [sha for _, _, sha, *_ in kept])
                          if kept else [])
        return [RecordBatch(page.reference, page_id, page.records, page.raw_bytes, first_row_no=first_row_no,
                            warnings=warnings, held=held,
                            archived=(sha256, next(references)) if page.records else None)
                for page, page_id, sha256, first_row_no, warnings, held in self.pages]


def land_pages(ctx: CollectContext, pages: Iterator[Page], *, start_cursor: dict | None, drift: str,
               expected_fields: list[str]) -> list[LandResult]:
    """Land every page the connector yields, each with its cursor (see the module docstring).

    Group commit: pages land together in one transaction with
    :func:`huiju.landing.land_record_batches` — each page still its own load with its own
    ledger row — with the cursor after the group's last page, and their originals are archived
    as one pack just before. A group closes at :data:`GROUP_PAGES` pages, or
    :data:`GROUP_SECONDS` after it opened (however slow the department is, a page waits no
    longer than that to land), or at the end of the run. A crash loses a group's data and
    cursor together, so it is fetched again and still landed exactly once. Every group but the
    run's last commits without waiting for the WAL flush; the last one's durable commit covers
    them all (see ``durable`` in :func:`~huiju.landing.land_record_batches`).
    """
    from huiju_connectors.rest import SchemaDrift, check_drift

    from huiju.landing import land_record_batches

    source = ctx.source
    results: list[LandResult] = []
    start = start_cursor or {}
    position = start.get("position")  # of the next request: where a refusal is reported
    rows_before = int(start.get(ROWS_BEFORE, 0)) if position is not None else 0
    failure: BaseException | None = None
    feed = _Prefetch(pages)
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
                if item is _Prefetch.LATER:
                    if group.pages or group.cursor is not None:
                        break
                    opened = time.monotonic()  # nothing to land yet: a new group opens with the next page
                    continue
                page, page_id, sha256 = item  # type: ignore[misc]
                first_row_no = rows_before + 1
                try:
                    warnings = check_drift(page.records, expected_fields, drift)  # type: ignore[arg-type]
                except SchemaDrift as exc:
                    reason = (f"{source.id}: {page.reference}: 接口返回的字段与登记的不一致，本页已暂停入库，"
                              f"请核对后更新配置（schema drift, policy hold）: {exc}")
                    group.pages.append((page, page_id, sha256, first_row_no, (), reason))
                    finished = True
                    break
                rows_before += len(page.records)
                position = page.next_cursor.get("position")
                group.cursor = dict(page.next_cursor)
                if group.cursor.get("position") is not None:
                    group.cursor[ROWS_BEFORE] = rows_before
                if page.records:
                    group.pages.append((page, page_id, sha256, first_row_no, tuple(warnings), None))
            if group.pages or group.cursor is not None:
                results += land_record_batches(ctx.conn, ctx.registry, source, group.batches(), cursor=group.cursor,
                                               data_date=ctx.data_date, durable=finished)
    finally:
        feed.close()
    if failure is not None:
        if getattr(failure, "retryable", True) is False:
            _record_refusal(ctx, failure, position)
        raise failure
    return results


def _record_refusal(ctx: CollectContext, error: BaseException, position: object) -> None:
    """Record a terminal refusal (a business fault, a 4xx, a malformed answer) as a failed load.

    The department's own words stay in the ledger, where stewards and the department's summary
    see failed batches; the load id derives from the request position and the message, so a
    rerun meeting the same refusal updates the same row.
    """
    import json

    from huiju.landing import _record_failure
    from huiju.ledger import make_content_id, make_load_id
    from huiju.masking import mask_text

    source = ctx.source
    reference = f"{source.id} @ {json.dumps(position, ensure_ascii=False, sort_keys=True)}"
    message = mask_text(f"{source.id}: {reference}: 接口拒绝了请求或返回了无法使用的应答，采集已停止，"
                        f"请核对后处理（terminal, not retried）: {error}")
    content = make_content_id(reference, str(error))
    _record_failure(ctx.conn, source, ctx.registry.dataset_of(source), reference, content, 0, None,
                    make_load_id(source.id, content), message, ctx.data_date)
    log.error("%s", message)
