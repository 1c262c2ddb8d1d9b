"""REST/JSON department interfaces: paged, incremental, retried, rate-limited reads.

The core calls :func:`fetch_pages` and lands each :class:`Page` it yields. A page carries the
records, the response body exactly as received (for the archive), a stable reference and the
``next_cursor`` — the JSON the core stores as the source's cursor *in the same transaction*
that lands the page. Restarting with the stored cursor therefore resumes right after the last
landed page, whatever killed the previous run.

The paging and watermark engine (:func:`paginate`) is independent of HTTP; the SOAP connector
reuses it, so both channels give the same guarantees.

Incremental guarantee (sources with :class:`Incremental`)
---------------------------------------------------------
The cursor holds the *watermark* ``W`` (the greatest ``updated_at`` among landed records,
exactly as the source wrote it) and ``seen_keys``: the keys of the landed records whose
``updated_at`` equals ``W``. Every query asks for ``updated_since=W`` and the source must treat
it as **inclusive** (``>= W``) and return records **ordered by updated_at ascending**. A
returned record is dropped only if its ``updated_at == W`` and its key is in ``seen_keys``.
Hence:

* the watermark never moves ahead of landed data (it is computed from landed records only and
  stored with them);
* records sharing the newest timestamp are never lost — neither across a page boundary nor
  when the department inserts more rows with that same timestamp between two runs (whatever
  their key) — and never landed twice;
* a record *updated* later gets a newer ``updated_at`` and is landed again, as a new version.

With ``page``/``offset`` pagination the query restarts at the first page whenever the watermark
advances, so rows that move to the end of the result set while we page (because they were
updated meanwhile) cannot make us skip their neighbours. A record arriving with
``updated_at < W`` means the source does not order by ``updated_at``; that breaks the guarantee,
so it is a terminal :class:`RestError` rather than a silent gap.

Limits: ``seen_keys`` grows with the number of records sharing one timestamp (a bulk update
stamping 100 000 rows alike makes a cursor of 100 000 keys), and a row re-saved with the very
same ``updated_at`` and key is not fetched again (timestamp granularity). Timestamps are
compared as ISO-8601 (aware ones in UTC) or as numbers; a source must not mix naive and aware.
"""

from __future__ import annotations

import email.utils
import functools
import itertools
import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

import httpx
import msgspec

__all__ = [
    "CURSOR_VERSION",
    "Fetched",
    "Incremental",
    "Page",
    "Pagination",
    "RestError",
    "RestSource",
    "RetryPolicy",
    "SchemaDrift",
    "TokenBucket",
    "check_body_count",
    "check_drift",
    "decode_json",
    "fetch_pages",
    "json_path",
    "page_records",
    "paginate",
    "parse_retry_after",
    "path_steps",
    "records_at",
    "redact_url",
]

log = logging.getLogger(__name__)

#: Version of the cursor JSON written by :func:`paginate`; older/unknown versions are refused.
CURSOR_VERSION = 1

#: Query parameter names whose values never appear in messages or logs.
_SECRET_PARAM_HINTS = ("token", "secret", "password", "passwd", "sign", "key", "auth", "credential")


class RestError(Exception):
    """A terminal failure talking to a REST source (the run stops; retrying will not help).

    ``url`` has secrets redacted; ``status`` is the HTTP status (``None`` for transport
    errors); ``body_snippet`` is the start of the response body. ``retryable`` is true only
    when a later run may succeed unchanged (the source stayed unreachable through every
    attempt); a refused request, a bad answer or an untrusted certificate needs a person.
    """

    def __init__(self, message: str, *, url: str = "", status: int | None = None, body_snippet: str = "",
                 retryable: bool = False):
        super().__init__(message)
        self.url = url
        self.status = status
        self.body_snippet = body_snippet
        self.retryable = retryable


class SchemaDrift(Exception):
    """Records no longer have the fields the source is registered with (policy ``hold``)."""

    def __init__(self, message: str, *, added: Sequence[str], removed: Sequence[str]):
        super().__init__(message)
        self.added = list(added)
        self.removed = list(removed)


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter.

    The wait before retry ``n`` (1-based) is uniform in ``[0, min(max_delay, base_delay * 2**(n-1))]``
    (full jitter: many workers retrying a struggling department server spread out instead of
    arriving in waves). A ``Retry-After`` header overrides it, capped at ``max_retry_after``.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return rng() * ceiling


@dataclass(frozen=True)
class Pagination:
    """How the source pages.

    * ``page``: ``page_param`` = page number (from ``first_page``), ``size_param`` = page size;
    * ``offset``: ``offset_param`` = records to skip, ``size_param`` = page size;
    * ``cursor``: ``cursor_param`` = the opaque token found at ``next_cursor_path`` in the
      previous response (absent/empty/null there = last page), ``size_param`` = page size.

    For ``page`` and ``offset`` a page with fewer records than the page size is the last.
    """

    kind: Literal["page", "offset", "cursor"] = "page"
    page_param: str = "page"
    size_param: str = "size"
    first_page: int = 1
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    next_cursor_path: str = "next_cursor"


@dataclass(frozen=True)
class Incremental:
    """Incremental reads by an updated-since filter (see the module docstring for the guarantee).

    ``since_param``: query parameter carrying the watermark (inclusive on the server side).
    ``updated_at_field``: JSON path of the record's last-modified timestamp.
    ``key_fields``: JSON paths of the record's business key (e.g. ``("id",)``).
    ``initial_since``: watermark for the very first run (``None``: no filter, full history).
    """

    since_param: str
    updated_at_field: str
    key_fields: tuple[str, ...]
    initial_since: str | None = None


@dataclass(frozen=True)
class RestSource:
    """One REST/JSON endpoint of a department (credentials are passed separately, as ``auth``).

    ``records_path`` is a dotted JSON path to the record list (``""`` when the body is the list).
    ``ok_path``/``ok_values``: many gateways answer HTTP 200 with ``{"code": 500, "msg": …}``;
    when ``ok_path`` is set, a value outside ``ok_values`` there is a terminal error.
    ``rate_limit`` is requests per second (token bucket of size ``burst``), counting retries.
    TLS is always verified: against ``ssl_context`` if given, else ``ca_bundle``, else the
    system/certifi roots.
    """

    base_url: str
    path: str
    records_path: str = ""
    pagination: Pagination = field(default_factory=Pagination)
    page_size: int = 100
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    incremental: Incremental | None = None
    ok_path: str | None = None
    ok_values: tuple[Any, ...] = (0, "0", 200, "200")
    rate_limit: float | None = None
    burst: int = 1
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    ca_bundle: str | None = None
    ssl_context: ssl.SSLContext | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    name: str = ""

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate_limit must be positive (requests per second)")
        ctx = self.ssl_context
        if ctx is not None and (ctx.verify_mode == ssl.CERT_NONE or not ctx.check_hostname):
            # Departments' certificates are sometimes broken; the fix is their CA bundle, not this.
            raise ValueError("ssl_context must verify certificates and host names")

    @property
    def url(self) -> str:
        """The endpoint URL (base URL joined with path)."""
        return self.base_url.rstrip("/") + "/" + self.path.lstrip("/")

    def verify(self) -> ssl.SSLContext | bool:
        """The httpx ``verify`` value: never ``False``."""
        if self.ssl_context is not None:
            return self.ssl_context
        if self.ca_bundle:
            return ssl.create_default_context(cafile=self.ca_bundle)
        return True


@dataclass(frozen=True)
class Page:
    """One page as fetched, for the core to land.

    ``reference``: stable description of the request (same request, same reference), e.g.
    ``/api/persons?page=12&size=100&updated_since=2024-05-01T00:00:00``.
    ``records``: the new records, whole (no field dropped), duplicates already removed.
    ``next_cursor``: JSON-serialisable; store it in the same transaction as the records.
    ``raw_bytes``: the response body exactly as received.
    ``fetched_count``: records in the response before duplicates were dropped.
    A page may have no records (all duplicates, or the final empty page): land it anyway, so
    the cursor moves on.

    ``in_body``: the connector left the records in ``raw_bytes`` (see ``whole_records`` in
    :func:`fetch_pages`): ``records`` is empty, and the page's records are those of the body's
    list at the positions in ``kept`` (all of them when ``kept`` is ``None``);
    :func:`page_records` decodes them.
    """

    reference: str
    records: list[dict[str, Any]]
    next_cursor: dict[str, Any]
    raw_bytes: bytes
    fetched_count: int = 0
    content_type: str = "application/json"
    in_body: bool = False
    kept: tuple[int, ...] | None = None

    @property
    def record_count(self) -> int:
        """How many records the page lands (decoded or left in the body)."""
        if not self.in_body:
            return len(self.records)
        return self.fetched_count if self.kept is None else len(self.kept)

    @property
    def is_last(self) -> bool:
        """True when this page ends the run (the next run starts from the watermark)."""
        return self.next_cursor.get("position") is None


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def json_path(obj: Any, path: str) -> Any:
    """Follow a dotted path (``data.items``, ``result.0.id``; ``""``/``$`` = the whole object).

    Raises ``KeyError`` when a step is missing.
    """
    current = obj
    for step in path_steps(path):
        if isinstance(current, Mapping):
            if step not in current:
                raise KeyError(path)
            current = current[step]
        elif isinstance(current, list) and step.lstrip("-").isdigit():
            try:
                current = current[int(step)]
            except IndexError:
                raise KeyError(path) from None
        else:
            raise KeyError(path)
    return current


def path_steps(path: str) -> list[str]:
    """The steps of a dotted path as :func:`json_path` follows them (``[]`` for ``""`` and ``$``)."""
    path = "" if path in ("", "$") else path.removeprefix("$.")
    return path.split(".") if path else []


def redact_url(url: str | httpx.URL) -> str:
    """The URL without user info and with secret-looking query values replaced by ``***``."""
    u = httpx.URL(str(url))
    params = [
        (k, "***" if _is_secret_param(k) else v)
        for k, v in u.params.multi_items()
    ]
    return str(u.copy_with(userinfo=b"", params=params or None))


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())


class TokenBucket:
    """Token-bucket rate limiter: at most ``rate`` requests/second on average, bursts of ``burst``.

    Clock and sleep are injectable so tests run without waiting.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = float(max(1, burst))
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            waited = 0.0
            if self._tokens < 1.0:
                waited = (1.0 - self._tokens) / self.rate
                self._sleep(waited)
                # The bucket refills during the wait by exactly the missing fraction.
                self._tokens = 1.0
                self._last = now + waited
            self._tokens -= 1.0
            return waited


def check_drift(
    records: Sequence[Mapping[str, Any]],
    expected_fields: Sequence[str],
    policy: Literal["warn", "hold"] = "warn",
) -> list[str]:
    """Compare the records' top-level fields with the registered ones.

    *Added*: a field some record has that is not expected. *Removed*: an expected field no
    record in the batch has (an empty batch proves nothing, so it reports nothing). Records
    are never modified — an added field is landed like any other, so nothing is silently lost.

    Returns one warning per difference with policy ``warn``; raises :class:`SchemaDrift` with
    policy ``hold`` if there is any difference (the core then holds the batch for a steward).
    """
    if policy not in ("warn", "hold"):
        raise ValueError(f"unknown drift policy {policy!r} (use 'warn' or 'hold')")
    if not records:
        return []
    present: set[str] = set().union(*records)
    expected = set(expected_fields)
    added = sorted(present - expected)
    removed = sorted(expected - present)
    warnings = [f"new field {name!r} (not in the registered schema)" for name in added]
    warnings += [f"field {name!r} is missing from every record" for name in removed]
    if warnings and policy == "hold":
        raise SchemaDrift("schema drift: " + "; ".join(warnings), added=added, removed=removed)
    for message in warnings:
        log.warning("schema drift: %s", message)
    return warnings


def _ts_key(value: Any) -> tuple[int, Any]:
    """Comparable form of a timestamp: numbers as numbers, ISO-8601 as naive-UTC datetimes."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return (0, float(value))
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            try:
                return (0, float(text))
            except ValueError:
                raise ValueError(f"not a timestamp: {value!r}") from None
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return (1, dt)


# --------------------------------------------------------------------------------------------
# The paging / watermark engine (transport independent)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    """What one request returned, as the engine needs it (built by the REST or SOAP layer)."""

    records: Sequence[Mapping[str, Any]]  # dicts, but for records left in the body (see in_body)
    raw_bytes: bytes
    reference: str
    next_token: str | None = None  # cursor pagination: the server's token for the next page
    content_type: str = "application/json"
    #: The records were checked but left in the body: ``records`` holds, for each, only the
    #: fields the watermark needs (incremental sources; nothing otherwise).
    in_body: bool = False


#: ``fetch(since, position) -> Fetched``; position is ``{"page": n}``, ``{"offset": n}`` or
#: ``{"token": t}`` (``None`` token = first page).
FetchFn = Callable[[Any, dict[str, Any]], Fetched]


def _first_position(pagination: Pagination) -> dict[str, Any]:
    if pagination.kind == "page":
        return {"page": pagination.first_page}
    if pagination.kind == "offset":
        return {"offset": 0}
    return {"token": None}


def _load_cursor(start_cursor: Mapping[str, Any] | None) -> dict[str, Any]:
    if not start_cursor:
        return {"v": CURSOR_VERSION, "position": None}
    cursor = json.loads(json.dumps(start_cursor))  # a private, plain-JSON copy
    if cursor.get("v") != CURSOR_VERSION:
        raise ValueError(f"unsupported cursor version {cursor.get('v')!r} (expected {CURSOR_VERSION})")
    return cursor


def paginate(
    fetch: FetchFn,
    pagination: Pagination,
    page_size: int,
    incremental: Incremental | None,
    start_cursor: Mapping[str, Any] | None,
    *,
    source_name: str = "",
) -> Iterator[Page]:
    """Drive ``fetch`` page by page from ``start_cursor``, yielding :class:`Page` objects.

    This is the engine behind :func:`fetch_pages` and the SOAP connector; the guarantees are
    in the module docstring. The cursor it writes::

        {"v": 1,
         "position": null | {"page": n} | {"offset": n} | {"token": t, "since": s},
         "watermark": ..., "seen_keys": [[key...], ...]}   # incremental sources only

    ``position`` null means the last run completed and the next starts afresh (from the
    watermark for incremental sources, from the first page otherwise).
    """
    cursor = _load_cursor(start_cursor)
    position: dict[str, Any] | None = cursor.get("position")
    watermark: Any = cursor.get("watermark") if incremental else None
    if incremental and watermark is None:
        watermark = incremental.initial_since
    seen: set[tuple[Any, ...]] = {tuple(k) for k in cursor.get("seen_keys", [])} if incremental else set()

    if position is None:
        position = _first_position(pagination)
    elif pagination.kind == "cursor":
        position = dict(position)

    while True:
        if pagination.kind == "cursor" and position.get("token") is not None:
            since = position.get("since")  # a server cursor is bound to the query that made it
        else:
            since = watermark
        fetched = fetch(since, {k: v for k, v in position.items() if k != "since"})

        kept: list[int] | None = None  # positions of the records landed; None: all of them
        if incremental is not None:
            kept = []
            watermark, seen = _dedupe(fetched, incremental, watermark, seen, kept, source_name)
            if len(kept) == len(fetched.records):
                kept = None

        raw_count = len(fetched.records)
        next_position: dict[str, Any] | None
        if pagination.kind == "cursor":
            next_position = {"token": fetched.next_token, "since": since} if fetched.next_token else None
        elif raw_count < page_size:
            next_position = None
        elif incremental is not None and watermark is not None and (
            since is None or _ts_key(watermark) > _ts_key(since)
        ):
            # The watermark advanced: ask again from the first page of ">= new watermark" rather
            # than the next page of the old query (rows updated meanwhile move to the end of
            # the old result set and would shift the pages under us).
            next_position = _first_position(pagination)
        elif pagination.kind == "page":
            next_position = {"page": position["page"] + 1}
        else:
            next_position = {"offset": position["offset"] + raw_count}

        next_cursor: dict[str, Any] = {"v": CURSOR_VERSION, "position": next_position}
        if incremental is not None:
            next_cursor["watermark"] = watermark
            next_cursor["seen_keys"] = sorted((list(k) for k in seen), key=json.dumps)
        records: list[dict[str, Any]] = []
        if not fetched.in_body:
            records = [*fetched.records] if kept is None else [fetched.records[i] for i in kept]
        yield Page(
            reference=fetched.reference,
            records=records,
            next_cursor=next_cursor,
            raw_bytes=fetched.raw_bytes,
            fetched_count=raw_count,
            content_type=fetched.content_type,
            in_body=fetched.in_body,
            kept=None if kept is None or not fetched.in_body else tuple(kept),
        )
        if next_position is None:
            return
        position = next_position


def _dedupe(
    fetched: Fetched,
    incremental: Incremental,
    watermark: Any,
    seen: set[tuple[Any, ...]],
    kept: list[int],
    source_name: str,
) -> tuple[Any, set[tuple[Any, ...]]]:
    """Append the positions of the records not landed before to ``kept``; return the new (watermark, seen keys)."""
    wm_key = _ts_key(watermark) if watermark is not None else None
    for position, record in enumerate(fetched.records):
        try:
            stamp = json_path(record, incremental.updated_at_field)
            key = tuple(json_path(record, f) for f in incremental.key_fields)
            stamp_key = _ts_key(stamp)
        except (KeyError, ValueError) as exc:
            raise RestError(
                f"{source_name or 'source'}: record at {fetched.reference} lacks a usable "
                f"{incremental.updated_at_field!r} or key {incremental.key_fields!r} ({exc})"
            ) from None
        if wm_key is not None:
            if stamp_key < wm_key:
                raise RestError(
                    f"{source_name or 'source'}: record {key!r} has {incremental.updated_at_field}="
                    f"{stamp!r}, older than the watermark {watermark!r}; the source must filter "
                    f"'>= {incremental.since_param}' and order by {incremental.updated_at_field} ascending"
                )
            if stamp_key == wm_key:
                if key in seen:
                    continue  # landed before (page overlap, retry, or previous run)
                seen.add(key)
                kept.append(position)
                continue
        watermark, wm_key, seen = stamp, stamp_key, {key}
        kept.append(position)
    return watermark, seen


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


def _retryable_transport_error(exc: httpx.HTTPError) -> bool:
    # A certificate that does not verify will not verify on the next attempt either.
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return False
        cause = cause.__cause__ or cause.__context__
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def _get_with_retries(
    client: httpx.Client,
    source: RestSource,
    params: list[tuple[str, str]],
    query: str,
    *,
    sleep: Callable[[float], None],
    rng: Callable[[], float],
    bucket: TokenBucket | None,
) -> httpx.Response:
    """GET the source's URL with ``params`` (``query``: the same, encoded), retried per the source's policy."""
    policy = source.retry
    url = source.url
    # The query string built once (it names the page too) saves httpx merging parameters on every request.
    target = f"{url}?{query}" if "?" not in url else None

    def shown() -> str:  # only for messages: building it for every page costs more than the request
        return redact_url(httpx.URL(url, params=params))

    for attempt in range(1, policy.max_attempts + 1):
        if bucket is not None:
            bucket.acquire()
        retry_after: float | None = None
        try:
            response = client.get(target) if target is not None else client.get(url, params=params)
        except httpx.HTTPError as exc:
            if not _retryable_transport_error(exc):
                raise RestError(f"GET {shown()} failed: {type(exc).__name__}: {exc}", url=shown()) from None
            reason = f"{type(exc).__name__}: {exc}"
        else:
            status = response.status_code
            if 200 <= status < 300:
                return response
            snippet = response.text[:300]
            if status == 429 or status >= 500:
                reason = f"HTTP {status}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is not None:
                    retry_after = min(retry_after, policy.max_retry_after)
            else:
                raise RestError(
                    f"GET {shown()} answered HTTP {status} (not retried): {snippet!r}",
                    url=shown(),
                    status=status,
                    body_snippet=snippet,
                )
        if attempt == policy.max_attempts:
            raise RestError(f"GET {shown()} gave up after {attempt} attempts; last: {reason}", url=shown(),
                            retryable=True)
        delay = retry_after if retry_after is not None else policy.backoff(attempt, rng)
        log.warning("GET %s attempt %d/%d: %s; retrying in %.2f s", shown(), attempt, policy.max_attempts,
                    reason, delay)
        sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


_JSON = msgspec.json.Decoder()


def decode_json(body: bytes) -> Any:
    """A JSON body as Python objects, exactly as :func:`json.loads` would give them.

    msgspec decodes UTF-8 JSON in about two thirds of the time; what it refuses and
    :func:`json.loads` accepts (``NaN``, out-of-range floats, lone surrogates, a BOM or UTF-16)
    is left to :func:`json.loads`, so the result never depends on which one read the body.
    Raises ``ValueError`` when the body is not JSON.
    """
    try:
        return _JSON.decode(body)
    except (msgspec.MsgspecError, UnicodeDecodeError):
        return json.loads(body)


def records_at(body: Any, path: str) -> Any:
    """What a decoded page holds at ``path``: its records (``[]`` where the path is null or missing).

    Many gateways send null, or omit the list, on an empty page.
    """
    try:
        records = json_path(body, path)
    except KeyError:
        return []
    return [] if records is None else records


def page_records(page: Page, records_path: str) -> list[dict[str, Any]]:
    """A page's records as dicts: ``page.records``, or those it left in its body (``page.in_body``).

    Decoded as :func:`fetch_pages` decodes a body it keeps whole (:func:`decode_json`, the list
    at ``records_path``), so they are the records it would have yielded. Raises
    :class:`RestError` naming the page when the body is not JSON or holds no list of objects there.
    """
    if not page.in_body:
        return page.records
    try:
        body = decode_json(page.raw_bytes)
    except ValueError as exc:
        raise RestError(f"{page.reference}: the body is not JSON ({exc})", url=page.reference) from None
    records = records_at(body, records_path)
    if not isinstance(records, list) or not all(map(isinstance, records, itertools.repeat(dict))):
        raise RestError(f"{page.reference}: {records_path or 'the body'} is not a list of objects", url=page.reference)
    check_body_count(page, len(records))
    return records if page.kept is None else [records[i] for i in page.kept]


def check_body_count(page: Page, found: int) -> None:
    """Refuse a page whose body holds ``found`` records where the connector counted another number."""
    if found != page.fetched_count:
        raise RestError(f"{page.reference}: {found} records in the body, {page.fetched_count} fetched",
                        url=page.reference)


@dataclass(frozen=True)
class _Checker:
    """Decodes a page's envelope and checks its records without decoding them whole.

    ``decoder`` gives a tree of structs; ``records``, ``ok`` and ``token`` are the attribute
    paths to the record list, the status value and the next-page token in it (``None``: not
    asked for). Each record decodes to a struct with only ``fields`` (its top-level fields the
    watermark needs; absent ones ``UNSET``): the rest of it is validated and skipped.
    """

    decoder: msgspec.json.Decoder
    records: tuple[str, ...]
    ok: tuple[str, ...] | None
    token: tuple[str, ...] | None
    fields: tuple[str, ...]

    def check(self, body: bytes) -> tuple[list[Mapping[str, Any]], Any, Any] | None:
        """The records (each a dict of ``fields`` only), the status value and the token; ``None`` if refused."""
        try:
            decoded = self.decoder.decode(body)
        except (msgspec.MsgspecError, UnicodeDecodeError):  # the whole decoding gives the error
            return None
        records = _follow(decoded, self.records) or []
        if self.fields:
            views = [{name: value for name, value in zip(self.fields, msgspec.structs.astuple(record), strict=True)
                      if value is not msgspec.UNSET} for record in records]
        else:
            views = [_NO_FIELDS] * len(records)  # one read-only mapping: nothing reads a field of it
        return views, _follow(decoded, self.ok), _follow(decoded, self.token)


_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})


def _follow(decoded: Any, names: tuple[str, ...] | None) -> Any:
    if names is None:
        return None
    for name in names:
        if decoded is None:
            return None
        decoded = getattr(decoded, name)
    return decoded




@functools.cache
def _checker(records_path: str, ok_path: str | None, token_path: str | None,
             fields: tuple[str, ...]) -> _Checker | None:
    """The :class:`_Checker` for these paths; ``None`` where it cannot mirror :func:`json_path`.

    It cannot when a path steps through a list index, when the body is the list itself and a
    status or token is asked for, or when one path passes through another's value.
    """
    roles = {"records": path_steps(records_path)}
    if ok_path is not None:
        roles["ok"] = path_steps(ok_path)
    if token_path is not None:
        roles["token"] = path_steps(token_path)
    if any(step.lstrip("-").isdigit() for steps in roles.values() for step in steps):
        return None
    if not roles["records"] and len(roles) > 1:
        return None
    record = msgspec.defstruct("Record", [(f"f{i}", Any, msgspec.UNSET) for i in range(len(fields))],
                               rename={f"f{i}": name for i, name in enumerate(fields)})
    leaves = {"records": list[record] | None, "ok": Any, "token": Any}  # type: ignore[valid-type]
    tree: dict[str, Any] = {}
    for role, steps in roles.items():
        if not steps:
            continue
        node = tree
        for step in steps[:-1]:
            node = node.setdefault(step, {})
            if not isinstance(node, dict):
                return None
        if steps[-1] in node:  # two roles at one value, or one path inside another's value
            return None
        node[steps[-1]] = role
    if not roles["records"]:
        return _Checker(msgspec.json.Decoder(list[record]), (), None, None, fields)  # type: ignore[valid-type]
    attributes: dict[str, tuple[str, ...]] = {}

    def struct(node: dict[str, Any], trail: tuple[str, ...]) -> Any:
        members, rename = [], {}
        for index, (key, child) in enumerate(node.items()):
            name = f"f{index}"
            rename[name] = key
            if isinstance(child, dict):
                kind = struct(child, (*trail, name)) | None
            else:
                kind, attributes[child] = leaves[child], (*trail, name)
            members.append((name, kind, None))
        return msgspec.defstruct("Envelope", members, rename=rename)

    decoder = msgspec.json.Decoder(struct(tree, ()))
    return _Checker(decoder, attributes["records"], attributes.get("ok"), attributes.get("token"), fields)


def _decode(source: RestSource, response: httpx.Response, shown: Callable[[], str]) -> Any:
    try:
        return decode_json(response.content)
    except ValueError:
        snippet = response.text[:300]
        raise RestError(
            f"GET {shown()} returned a body that is not JSON: {snippet!r}",
            url=shown(),
            status=response.status_code,
            body_snippet=snippet,
        ) from None


def fetch_pages(
    source: RestSource,
    auth: httpx.Auth | None = None,
    start_cursor: Mapping[str, Any] | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    clock: Callable[[], float] = time.monotonic,
    transport: httpx.BaseTransport | None = None,
    whole_records: bool = True,
) -> Iterator[Page]:
    """Read ``source`` page by page from ``start_cursor`` (``None``: from the beginning).

    Yields :class:`Page` objects; the caller lands each page's records and stores its
    ``next_cursor`` in one transaction before asking for the next. Stopping early (closing the
    generator) is safe. Timeouts, connection errors, HTTP 5xx and 429 are retried with backoff
    (``Retry-After`` honoured); other errors raise :class:`RestError`. ``sleep``, ``rng`` and
    ``clock`` are injectable for tests; ``transport`` lets tests or proxies plug into httpx.

    ``whole_records=False``: for a caller that decodes the records elsewhere (the platform
    does, in its landing process), a body whose envelope and records check out without being
    decoded whole — each record an object, the status, token and watermark fields where
    expected — is yielded with its records left in it (``Page.in_body``; only the fields the
    watermark needs are decoded). Paging, watermark and errors are the same either way; a
    body the check refuses is decoded whole as usual, which raises the usual error.

    Incremental sources carry the watermark in the cursor; see the module docstring for
    exactly what is guaranteed.
    """
    pagination = source.pagination
    bucket = (
        TokenBucket(source.rate_limit, source.burst, clock=clock, sleep=sleep) if source.rate_limit else None
    )
    timeout = httpx.Timeout(source.read_timeout, connect=source.connect_timeout)
    headers = {"Accept": "application/json", "User-Agent": "huiju-connectors", **source.headers}
    path = httpx.URL(source.url).raw_path.decode("ascii").split("?")[0]

    with httpx.Client(
        auth=auth, timeout=timeout, verify=source.verify(), headers=headers, transport=transport,
        follow_redirects=False,
    ) as client:

        def fetch(since: Any, position: dict[str, Any]) -> Fetched:
            params: list[tuple[str, str]] = [(k, str(v)) for k, v in source.params.items()]
            params.append((pagination.size_param, str(source.page_size)))
            if pagination.kind == "page":
                params.append((pagination.page_param, str(position["page"])))
            elif pagination.kind == "offset":
                params.append((pagination.offset_param, str(position["offset"])))
            elif position.get("token") is not None:
                params.append((pagination.cursor_param, str(position["token"])))
            if source.incremental is not None and since is not None:
                params.append((source.incremental.since_param, str(since)))
            params.sort()
            query = str(httpx.QueryParams(params))
            shown_params = redact_url_params(params)
            reference = path + "?" + (query if shown_params == params else str(httpx.QueryParams(shown_params)))
            response = _get_with_retries(client, source, params, query, sleep=sleep, rng=rng, bucket=bucket)
            def shown() -> str:
                return redact_url(response.request.url)

            checked = checker.check(response.content) if checker is not None else None
            if checked is not None:
                views, status_value, token = checked
                _check_status(source, status_value, response, shown)
                return Fetched(records=views, raw_bytes=response.content, reference=reference,
                               next_token=_next_token(token) if pagination.kind == "cursor" else None, in_body=True)
            body = _decode(source, response, shown)
            if source.ok_path is not None:
                try:
                    status_value = json_path(body, source.ok_path)
                except KeyError:
                    status_value = None
                _check_status(source, status_value, response, shown)
            records = records_at(body, source.records_path)
            if not isinstance(records, list) or not all(map(isinstance, records, itertools.repeat(dict))):
                raise RestError(f"GET {shown()}: {source.records_path or 'the body'} is not a list of objects",
                                url=shown(), status=response.status_code)
            next_token: str | None = None
            if pagination.kind == "cursor":
                try:
                    next_token = _next_token(json_path(body, pagination.next_cursor_path))
                except KeyError:
                    next_token = None
            return Fetched(records=records, raw_bytes=response.content, reference=reference,
                           next_token=next_token)

        checker = None
        if not whole_records:
            watermark_fields = () if source.incremental is None else tuple(dict.fromkeys(
                path_steps(name)[0]
                for name in (source.incremental.updated_at_field, *source.incremental.key_fields)))
            checker = _checker(source.records_path, source.ok_path,
                               pagination.next_cursor_path if pagination.kind == "cursor" else None, watermark_fields)
        log.info("fetching %s from %s (cursor: %s)", source.name or source.url, redact_url(source.url),
                 "resume" if start_cursor else "none")
        yield from paginate(fetch, pagination, source.page_size, source.incremental, start_cursor,
                            source_name=source.name or redact_url(source.url))


def _check_status(source: RestSource, status_value: Any, response: httpx.Response, shown: Callable[[], str]) -> None:
    """Refuse an answer whose status value (at ``ok_path``) is not one of ``ok_values``."""
    if source.ok_path is not None and status_value not in source.ok_values:
        snippet = response.text[:300]
        raise RestError(
            f"GET {shown()} reported failure {source.ok_path}={status_value!r}: {snippet!r}",
            url=shown(), status=response.status_code, body_snippet=snippet,
        )


def _next_token(token: Any) -> str | None:
    return str(token) if token not in (None, "") else None


def redact_url_params(params: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Query parameters with secret-looking values replaced by ``***`` (for references and logs)."""
    return [(k, "***" if _is_secret_param(k) else v) for k, v in params]


@functools.lru_cache(maxsize=256)
def _is_secret_param(name: str) -> bool:
    # A source has a handful of parameter names, asked about on every page.
    return any(hint in name.lower() for hint in _SECRET_PARAM_HINTS)
