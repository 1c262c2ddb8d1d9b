"""The HTTP side of a REST source: requests with retries and a rate limit, TLS always verified.

:func:`fetch_pages` drives the paging engine (:mod:`huiju_connectors.rest.paging`) with one GET
per page: timeouts, connection errors, HTTP 5xx and 429 are retried under the source's
:class:`~huiju_connectors.retry.RetryPolicy` (``Retry-After`` honoured); any other failure is a
terminal :class:`~huiju_connectors.rest.errors.RestError`. Secrets never appear in a URL shown
in a message or a log (:func:`redact_url`).
"""

from __future__ import annotations

import email.utils
import functools
import itertools
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import httpx
from huiju_connectors.retry import GaveUp, Retrier, RetryPolicy

from .body import _checker, decode_json, json_path, path_steps, records_at
from .errors import RestError
from .paging import Caps, Fetched, Incremental, Page, Pagination, paginate

log = logging.getLogger(__name__)

#: Query parameter names whose values never appear in messages or logs.
_SECRET_PARAM_HINTS = ("token", "secret", "password", "passwd", "sign", "key", "auth", "credential")


@dataclass(frozen=True, kw_only=True)
class HttpEndpoint:
    """What every HTTP source shares (REST, SOAP, public web pages): timeouts, the CA bundle its TLS is
    verified against (else the system/certifi roots), the retry policy and the name it has in messages.
    Keyword-only, so each source's own fields come first; a source may declare other defaults."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    ca_bundle: str | None = None
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=5))
    name: str = ""


@dataclass(frozen=True)
class RestSource(HttpEndpoint):
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
    ssl_context: ssl.SSLContext | None = None
    caps: Caps = field(default_factory=Caps)

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



def _retryable_transport_error(exc: httpx.HTTPError) -> bool:
    # A certificate that does not verify will not verify on the next attempt either.
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return False
        cause = cause.__cause__ or cause.__context__
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)



class _TryAgain(Exception):
    """A failure worth another attempt: a timeout, a dropped connection, HTTP 5xx or 429 (``retry_after``: its wait)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _get_with_retries(
    client: httpx.Client,
    source: RestSource,
    params: list[tuple[str, str]],
    query: str,
    *,
    retrier: Retrier,
    bucket: TokenBucket | None,
) -> httpx.Response:
    """GET the source's URL with ``params`` (``query``: the same, encoded), retried per the source's policy."""
    url = source.url
    # The query string built once (it names the page too) saves httpx merging parameters on every request.
    target = f"{url}?{query}" if "?" not in url else None

    def shown() -> str:  # only for messages: building it for every page costs more than the request
        return redact_url(httpx.URL(url, params=params))

    def attempt() -> httpx.Response:
        if bucket is not None:
            bucket.acquire()
        try:
            request = client.build_request("GET", target) if target is not None else \
                client.build_request("GET", url, params=params)
            response = client.send(request, stream=True)
        except httpx.HTTPError as exc:
            if not _retryable_transport_error(exc):
                raise RestError(f"GET {shown()} failed: {type(exc).__name__}: {exc}", url=shown()) from None
            raise _TryAgain(f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if 200 <= status < 300:
            try:
                return read_capped(response, source.caps.max_page_bytes, what=lambda: f"GET {shown()}")
            except httpx.HTTPError as exc:
                raise _TryAgain(f"{type(exc).__name__}: {exc}") from None
        if status == 429 or status >= 500:
            response.close()
            raise _TryAgain(f"HTTP {status}", parse_retry_after(response.headers.get("Retry-After")))
        words = gateway_words(response)
        raise RestError(
            f"GET {shown()} answered HTTP {status} (not retried): {describe_body(response)}",
            url=shown(),
            status=status,
            gateway_message=words,
        )

    try:
        return retrier(attempt, lambda: f"GET {shown()}")
    except GaveUp as gave_up:
        raise RestError(f"GET {shown()} gave up after {gave_up.attempts} attempts; last: {gave_up.last}",
                        url=shown(), retryable=True) from None


def describe_body(response: httpx.Response) -> str:
    """What an error may say about a body: its type and size, never its text (it can hold citizens' data)."""
    length = len(response.content) if hasattr(response, "_content") else response.headers.get("Content-Length", "?")
    kind = response.headers.get("Content-Type", "no content type").split(";")[0].strip() or "no content type"
    return f"body not shown ({kind}, {length} bytes)"


#: Where gateways put their own words about a refusal (``{"code": 401, "msg": "签名校验失败"}``).
_MESSAGE_KEYS = ("msg", "message", "errmsg", "error_description", "error", "detail")


def gateway_words(response: httpx.Response, limit: int = 4096) -> str | None:
    """The gateway's own message in a small JSON error body (its ``msg``/``message``/… field), else None.

    Kept apart from the exception's text (:attr:`RestError.gateway_message`): it can echo what
    was sent, so only the platform, which masks it, decides where it goes.
    """
    try:
        body = read_capped(response, limit, what=lambda: "error body").content
        decoded = decode_json(body)
    except (RestError, ValueError, httpx.HTTPError):
        return None
    if isinstance(decoded, dict):
        for key in _MESSAGE_KEYS:
            value = decoded.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:200]
    return None


def read_capped(response: httpx.Response, limit: int, *, what: Callable[[], str]) -> httpx.Response:
    """Read a streamed response's body, refusing it past ``limit`` bytes (decoded), and close it.

    A body is never read whole first: a gateway sending an endless or gigantic page stops at the
    cap with a :class:`RestError` naming the request and the cap.
    """
    declared = response.headers.get("Content-Length")
    try:
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RestError(f"{what()}: the answer declares {int(declared)} bytes, more than max_page_bytes "
                            f"({limit}); raise max_page_bytes for this source if that is expected",
                            url=redact_url(response.request.url), status=response.status_code)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise RestError(f"{what()}: the answer exceeds max_page_bytes ({limit} bytes); "
                                f"raise max_page_bytes for this source if that is expected",
                                url=redact_url(response.request.url), status=response.status_code)
            chunks.append(chunk)
    finally:
        response.close()
    response._content = b"".join(chunks)  # httpx's own slot for a body read in full
    return response


def _decode(source: RestSource, response: httpx.Response, shown: Callable[[], str]) -> Any:
    try:
        return decode_json(response.content)
    except ValueError:
        raise RestError(
            f"GET {shown()} returned a body that is not JSON: {describe_body(response)}",
            url=shown(),
            status=response.status_code,
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
    retrier = source.retry.retrier(lambda failure: isinstance(failure, _TryAgain), sleep=sleep, rng=rng, logger=log)
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
            response = _get_with_retries(client, source, params, query, retrier=retrier, bucket=bucket)
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
                            source_name=source.name or redact_url(source.url), caps=source.caps)


def _check_status(source: RestSource, status_value: Any, response: httpx.Response, shown: Callable[[], str]) -> None:
    """Refuse an answer whose status value (at ``ok_path``) is not one of ``ok_values``."""
    if source.ok_path is not None and status_value not in source.ok_values:
        shown_value = status_value if isinstance(status_value, (int, float, bool)) or status_value is None \
            else f"{str(status_value)[:20]!r}"
        raise RestError(
            f"GET {shown()} reported failure {source.ok_path}={shown_value}: {describe_body(response)}",
            url=shown(), status=response.status_code, gateway_message=gateway_words(response, len(response.content)),
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
