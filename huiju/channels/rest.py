"""The REST channel: a department's paged JSON interface, read page by page into the ledger.

Configuration (the source's ``rest:`` block, :class:`Settings`) says *what* to call: path,
pagination, where the records are in the body, incremental parameters, which kind of
authentication, rate limit, CA bundle and the schema-drift policy. The source's Airflow
Connection says *where and who*: the base URL (``extra.base_url``, else
``<scheme>://host:port`` with the scheme from ``extra.scheme`` or the Connection's schema,
``https`` by default) and the credentials (``login``/``password``, or ``extra``).

How a run goes (:func:`land_pages`, shared with the SOAP channel):

* it starts from the source's stored cursor (``ops.cursors``). The cursor's contract is
  :mod:`huiju_connectors.rest`'s: a ``position`` resumes an interrupted run right after its
  last landed page; a null position means the last run finished, and the next one opens a new
  incremental window from the stored watermark (non-incremental sources read from page one
  again; identical pages are recognised as already landed);
* every page with records is landed with :func:`huiju.landing.land_records` — records, payload
  (archived as received) and the page's cursor in one transaction, the load id derived from
  sha256(payload + reference), so a rerun or a crash never lands a page twice;
* a page without new records (the final empty page, or only records landed before) creates no
  ledger row: only its cursor is saved. It covers no data, so the cursor is still never ahead
  of landed data, and the ledger holds only batches someone can validate;
* pages are fetched (and archived) ahead in a thread while earlier ones land, and pages already
  fetched are landed in one transaction (group commit, see :func:`land_pages`);
* each page's fields are compared with the configured ones (:func:`check_drift`): with
  ``drift: warn`` differences are stored as the load's warnings (and the unknown fields are
  kept in ``_extra``: nothing is lost); with ``drift: hold`` the run stops before the drifted
  page, nothing of it is landed and the cursor stays where it was, until a steward updates the
  configuration.

Row numbers: a page's records are numbered by their position in the result of the query the
page belongs to (page ``n`` of size ``s`` starts at ``(n-1)*s + 1``), the way the department
would count them in its own system.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from huiju_connectors.rest import Page

    from huiju.channels import CollectContext, ConnectionInfo
    from huiju.landing import LandResult

log = logging.getLogger(__name__)


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IncrementalSettings(_Block):
    """Incremental reads by an updated-since parameter (inclusive, ordered by update time)."""

    since_param: str = Field(min_length=1)
    updated_at_field: str = Field(min_length=1)
    key_fields: tuple[str, ...] = Field(min_length=1)
    initial_since: str | None = None


class PaginationSettings(_Block):
    """How the interface pages (see ``huiju_connectors.rest.Pagination``)."""

    kind: Literal["page", "offset", "cursor"] = "page"
    page_param: str = "page"
    size_param: str = "size"
    first_page: int = Field(default=1, ge=0)
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    next_cursor_path: str = "next_cursor"


class HmacHeaderSettings(_Block):
    """Header names of an HMAC-signing gateway, when they differ from the common ones."""

    app_key: str = "X-App-Key"
    timestamp: str = "X-Timestamp"
    nonce: str = "X-Nonce"
    signature: str = "X-Signature"


class Settings(_Block):
    """The ``rest:`` block of a source.

    ``auth``: ``token`` (bearer token: the Connection's password, or ``extra.token``),
    ``hmac`` (app key = login, app secret = password), ``oauth2`` (client credentials:
    client id = login, secret = password, token endpoint ``token_url`` — a path on the same
    host or a full URL), ``none``. ``ca_bundle``: a PEM file (relative to ``config/``) with the
    government CA that signed the department's certificate; TLS is always verified.
    ``known_fields``: fields the interface sends that are not mapped in ``columns`` and are not
    drift (they are kept in ``_extra``); the incremental fields are known automatically.
    """

    path: str = Field(min_length=1)
    records_path: str = ""
    pagination: PaginationSettings = PaginationSettings()
    page_size: int = Field(default=100, ge=1, le=10_000)
    params: dict[str, str] = Field(default_factory=dict)
    incremental: IncrementalSettings | None = None
    auth: Literal["token", "hmac", "oauth2", "none"] = "none"
    hmac_headers: HmacHeaderSettings = HmacHeaderSettings()
    token_url: str | None = None
    scope: str | None = None
    ok_path: str | None = None
    ok_values: tuple[int | str, ...] = (0, "0", 200, "200")
    rate_limit: float | None = Field(default=None, gt=0)
    burst: int = Field(default=1, ge=1)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    ca_bundle: str | None = None
    drift: Literal["warn", "hold"] = "warn"
    known_fields: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _oauth2_needs_token_url(self) -> Settings:
        if self.auth == "oauth2" and not self.token_url:
            raise ValueError("auth: oauth2 needs token_url (the token endpoint)")
        return self


# --------------------------------------------------------------------------------------------
# Shared with the SOAP channel
# --------------------------------------------------------------------------------------------


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


def content_id(page: Page) -> str:
    """A page's identity: sha256 of the body as received and the request that produced it."""
    digest = hashlib.sha256(page.raw_bytes)
    digest.update(b"\x00" + page.reference.encode("utf-8"))
    return digest.hexdigest()


class _Prefetch:
    """Fetch the next pages in a thread, and archive them in a small pool, while earlier ones land.

    Safe for exactly-once: each page's cursor is computed by the connector from the pages
    before it, not from what was landed, and a page fetched but never landed (crash, error)
    is simply fetched again by the next run (its archived original is content-addressed, so
    archiving it twice changes nothing). Archiving runs beside fetching because each original
    is fsynced: in line, the disk would set the pace of the whole run.
    """

    _DONE = object()

    def __init__(self, pages: Iterator[Page], prepare: Callable[[Page], object], depth: int = 64) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pages = pages
        self._prepare = prepare
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="huiju-archive")
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
                if not self._put((page, self._pool.submit(self._prepare, page))):
                    return
            self._put(self._DONE)
        except BaseException as exc:  # handed over to the consumer, raised there
            self._put(exc)
        finally:
            close = getattr(self._pages, "close", None)
            if close is not None:
                close()

    def ready(self) -> bool:
        """True when the next page (or the end) is already here: taking it will not wait for the network."""
        return not self._slots.empty()

    def next(self) -> Page | None:
        """The next page (archived), ``None`` after the last; raises what the connector raised."""
        item = self._slots.get()
        if item is self._DONE:
            self._slots.put(item)  # stays the answer
            return None
        if isinstance(item, BaseException):
            raise item
        page, archived = item
        archived.result()
        return page

    def close(self) -> None:
        """Stop fetching (pages not taken are dropped; the next run fetches them again)."""
        self._stop.set()
        self._worker.join(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)


#: Pages landed in one transaction at most, and for how long a transaction may gather them.
GROUP_PAGES = 50
GROUP_SECONDS = 1.0


def _page_start(position: dict[str, Any] | None, kind: str, first_page: int, page_size: int) -> int:
    """0-based position in the query's result of the first record of the page fetched at ``position``."""
    if kind == "page":
        page = position.get("page", first_page) if position else first_page
        return max(0, (page - first_page) * page_size)
    if kind == "offset":
        return int(position.get("offset", 0)) if position else 0
    return 0  # a server cursor says nothing about positions


def land_pages(ctx: CollectContext, pages: Iterator[Page], *, start_cursor: dict | None, drift: str,
               expected_fields: list[str], pagination_kind: str, first_page: int,
               page_size: int) -> list[LandResult]:
    """Land every page the connector yields, each with its cursor (see the module docstring).

    Group commit: the pages already fetched when landing is due (up to :data:`GROUP_PAGES`, or
    what arrives within :data:`GROUP_SECONDS`) land together in one transaction with
    :func:`huiju.landing.land_record_batches` — each page still its own load with its own
    ledger row — and the cursor after the group's last page. A crash loses a group's data and
    cursor together, so it is fetched again and still landed exactly once; a group never waits
    for the network, so a slow department never holds landed pages back.
    """
    from huiju_connectors.rest import SchemaDrift, check_drift

    from huiju.landing import LandResult, RecordBatch, archive_payload, land_record_batches
    from huiju.ledger import make_load_id

    source = ctx.source
    results: list[LandResult] = []
    position = (start_cursor or {}).get("position")
    failure: BaseException | None = None
    held: LandResult | None = None  # the page refused under drift policy "hold"
    feed = _Prefetch(pages, lambda page: archive_payload(page.raw_bytes) if page.records else None)
    try:
        finished = False
        while not finished:
            batches: list[RecordBatch] = []
            cursor: dict | None = None
            opened = time.monotonic()
            while True:
                try:
                    page = feed.next()
                except Exception as exc:  # the connector failed: land what is here, then report it
                    failure, finished = exc, True
                    break
                if page is None:
                    finished = True
                    break
                start = _page_start(position, pagination_kind, first_page, page_size)
                try:
                    warnings = check_drift(page.records, expected_fields, drift)  # type: ignore[arg-type]
                except SchemaDrift as exc:
                    message = (f"{source.id}: {page.reference}: 接口返回的字段与登记的不一致，已暂停采集，"
                               f"请核对后更新配置（schema drift, policy hold）: {exc}")
                    log.error("%s", message)
                    held = LandResult(source.id, page.reference, make_load_id(source.id, content_id(page)),
                                      "failed", error=message)
                    finished = True
                    break
                position = page.next_cursor.get("position")
                cursor = page.next_cursor
                if page.records:
                    # Records dropped as landed before come first in the page (they share the watermark).
                    skipped = page.fetched_count - len(page.records)
                    batches.append(RecordBatch(page.reference, content_id(page), page.records, page.raw_bytes,
                                               first_row_no=start + skipped + 1, warnings=tuple(warnings)))
                if (not feed.ready() or len(batches) >= GROUP_PAGES
                        or time.monotonic() - opened >= GROUP_SECONDS):
                    break
            if cursor is not None:
                results += land_record_batches(ctx.conn, ctx.registry, source, batches, cursor=cursor,
                                               data_date=ctx.data_date)
    finally:
        feed.close()
    if failure is not None:
        raise failure
    return results + ([held] if held is not None else [])


def expected_fields(columns: dict[str, str], incremental: IncrementalSettings | None,
                    known: tuple[str, ...]) -> list[str]:
    """Top-level fields a record is expected to have: mapped columns, incremental fields, known extras."""
    names = list(columns) + list(known)
    if incremental is not None:
        names += [incremental.updated_at_field.split(".")[0], *(k.split(".")[0] for k in incremental.key_fields)]
    return list(dict.fromkeys(names))


def secret(connection: ConnectionInfo, name: str, field_value: str | None) -> str:
    """A credential from the Connection (its field, else ``extra[name]``), or a clear error."""
    value = field_value or connection.extra.get(name)
    if not value:
        raise ValueError(f"Connection {connection.conn_id!r} lacks {name}")
    return str(value)


# --------------------------------------------------------------------------------------------
# REST
# --------------------------------------------------------------------------------------------


def _auth(settings: Settings, connection: ConnectionInfo, url: str) -> Any:
    from huiju_connectors.http_auth import BearerAuth, HmacAuth, HmacHeaders, OAuth2ClientCredentials

    if settings.auth == "token":
        return BearerAuth(secret(connection, "token", connection.password))
    if settings.auth == "hmac":
        return HmacAuth(secret(connection, "app_key", connection.login),
                        secret(connection, "app_secret", connection.password),
                        headers=HmacHeaders(**settings.hmac_headers.model_dump()))
    if settings.auth == "oauth2":
        token_url = settings.token_url or ""
        if "://" not in token_url:
            token_url = url + "/" + token_url.lstrip("/")
        return OAuth2ClientCredentials(token_url, secret(connection, "client_id", connection.login),
                                       secret(connection, "client_secret", connection.password), scope=settings.scope)
    return None


def rest_source(ctx: CollectContext) -> tuple[Any, Any]:
    """The connector's ``RestSource`` and auth for this run, from settings and the Connection."""
    from huiju_connectors.rest import Incremental, Pagination, RestSource, RetryPolicy

    settings: Settings = ctx.settings
    source = ctx.source
    url = base_url(ctx.connection, source.id)
    assert ctx.connection is not None  # base_url raised otherwise
    ca_bundle = settings.ca_bundle or ctx.connection.extra.get("ca_bundle")
    incremental = None
    if settings.incremental is not None:
        inc = settings.incremental
        incremental = Incremental(inc.since_param, inc.updated_at_field, tuple(inc.key_fields), inc.initial_since)
    rest = RestSource(
        base_url=url, path=settings.path, records_path=settings.records_path,
        pagination=Pagination(**settings.pagination.model_dump()), page_size=settings.page_size,
        params=dict(settings.params), incremental=incremental, ok_path=settings.ok_path,
        ok_values=tuple(settings.ok_values), rate_limit=settings.rate_limit, burst=settings.burst,
        connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
        ca_bundle=config_path(ca_bundle) if ca_bundle else None,
        retry=RetryPolicy(max_attempts=settings.max_attempts), name=source.id,
    )
    return rest, _auth(settings, ctx.connection, url)


def collect(ctx: CollectContext) -> list[LandResult]:
    """Fetch the source's new pages from its REST interface and land each with its cursor."""
    from huiju_connectors.rest import fetch_pages

    from huiju.ledger import get_cursor

    settings: Settings = ctx.settings
    rest, auth = rest_source(ctx)
    cursor = get_cursor(ctx.conn, ctx.source.id)
    ctx.conn.commit()  # no transaction left open while pages are fetched
    return land_pages(
        ctx, fetch_pages(rest, auth, cursor), start_cursor=cursor, drift=settings.drift,
        expected_fields=expected_fields(ctx.source.columns, settings.incremental, settings.known_fields),
        pagination_kind=settings.pagination.kind, first_page=settings.pagination.first_page,
        page_size=settings.page_size,
    )
