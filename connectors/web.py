"""Public web pages (网络爬虫): a department's list pages fetched politely, page by page, as received.

A :class:`WebSource` names the first page and how the list pages (:class:`WebPagination`):
``param`` (``?page=2``), ``pattern`` (``index_1.html``, ``index_2.html`` … after ``index.html``, as
most government CMSs write them), ``next_link`` (the link whose text is 下一页) or ``none``.
:func:`fetch_pages` yields each page with its body exactly as received (for the archive) and
its data table (:mod:`huiju_connectors.html_tables`), and stops at the end of the list: a page
whose table has no rows, a page that repeats the one before, HTTP 404 (numbered kinds), or no
next link.

Politeness: ``robots.txt`` is read first (``urllib.robotparser``) and honoured for the crawler's
``User-Agent``; a page it disallows stops the run with an error naming it. Requests are spaced by
the source's ``rate_limit`` or the site's ``Crawl-delay`` / ``Request-rate``, whichever is slower,
counting retries. Per RFC 9309 a ``robots.txt`` answering 4xx allows everything and one that
cannot be fetched (5xx, no connection) forbids everything.

Caps, as for every channel: bytes per page (read with the limit, never whole first), records per
page, pages per run (past it the run stops with an error), nesting depth (libxml2's 256 levels),
colspan/rowspan. Redirects are followed only within the site (same scheme, host and port), three
at most. Timeouts, dropped connections, HTTP 5xx and 429 are retried under the source's
:class:`~huiju_connectors.retry.RetryPolicy`. TLS is always verified.
"""

from __future__ import annotations

import hashlib
import logging
import random
import ssl
import time
import urllib.robotparser
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urljoin, urlsplit

import httpx
from huiju_connectors.html_tables import HtmlRefused, HtmlTable, decode_html, read_page
from huiju_connectors.rest.client import (
    HttpEndpoint,
    TokenBucket,
    _retryable_transport_error,
    parse_retry_after,
    read_capped,
    redact_url,
)
from huiju_connectors.rest.errors import RestError
from huiju_connectors.retry import GaveUp, RetryPolicy

__all__ = ["WebCaps", "WebError", "WebPage", "WebPagination", "WebSource", "fetch_pages", "read_robots"]

log = logging.getLogger(__name__)

USER_AGENT = "HuijuCrawler/1.0 (government data aggregation platform)"
_MAX_REDIRECTS = 3
_ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: crawlers must read at least 500 KiB


class WebError(Exception):
    """A page cannot be fetched or read; the message names the page (``url``) and what to do.

    ``retryable``: the site did not answer after every attempt (the next run may succeed); otherwise
    the page itself is refused (robots.txt, a cap, hostile markup, no table) until someone acts.
    """

    def __init__(self, message: str, *, url: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.url = url
        self.retryable = retryable


@dataclass(frozen=True)
class WebPagination:
    """How a list pages: ``param`` (``page_param`` from ``first_page``), ``pattern`` (``pattern.format(page=n)``
    for the pages after the first, n from ``first_page``), ``next_link`` (a link whose text is one of
    ``next_texts``) or ``none``."""

    kind: Literal["none", "param", "pattern", "next_link"] = "none"
    page_param: str = "page"
    first_page: int = 1
    pattern: str | None = None
    next_texts: tuple[str, ...] = ("下一页", "下页", "next")


@dataclass(frozen=True)
class WebCaps:
    """Pages per run, bytes per page, records per page."""

    max_pages: int = 1_000
    max_page_bytes: int = 8 * 1024 * 1024
    max_page_records: int = 100_000


@dataclass(frozen=True)
class WebSource(HttpEndpoint):
    """A department's public list: where its first page is, how it pages, how fast it may be read."""

    base_url: str
    path: str
    pagination: WebPagination = field(default_factory=WebPagination)
    rate_limit: float | None = 1.0  # requests per second at most (None: as fast as the site answers)
    user_agent: str = USER_AGENT
    read_timeout: float = field(default=30.0, kw_only=True)  # a page is small: a slow answer is a stuck one
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=4), kw_only=True)
    caps: WebCaps = field(default_factory=WebCaps)

    def page_url(self, number: int) -> str:
        """The URL of page ``number`` (1: the first page) of a numbered list."""
        first = urljoin(self.base_url.rstrip("/") + "/", self.path.lstrip("/"))
        if number == 1 and self.pagination.kind != "param":
            return first
        if self.pagination.kind == "param":
            value = self.pagination.first_page + number - 1
            return str(httpx.URL(first).copy_merge_params({self.pagination.page_param: str(value)}))
        assert self.pagination.pattern is not None
        later = self.pagination.pattern.format(page=self.pagination.first_page + number - 2)
        return urljoin(first, later)


@dataclass(frozen=True)
class WebPage:
    """One page as received: its number in the run, its reference (path and query), body and table."""

    number: int
    url: str
    reference: str
    body: bytes
    content_type: str | None
    table: HtmlTable | None
    tables: int

    @property
    def sha256(self) -> str:
        """The body's sha256 (the archive's name for it)."""
        return hashlib.sha256(self.body).hexdigest()


class _TryAgain(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _same_site(a: str, b: str) -> bool:
    first, second = urlsplit(a), urlsplit(b)
    return (first.scheme, first.hostname, first.port) == (second.scheme, second.hostname, second.port)


class _Fetcher:
    """GET with retries, spacing, caps and same-site redirects, over one httpx client."""

    def __init__(self, source: WebSource, client: httpx.Client, bucket: TokenBucket | None,
                 sleep: Callable[[float], None], rng: Callable[[], float]) -> None:
        self.source = source
        self.client = client
        self.bucket = bucket
        self.retrier = source.retry.retrier(lambda failure: isinstance(failure, _TryAgain), sleep=sleep, rng=rng,
                                            logger=log)

    def get(self, url: str, limit: int) -> httpx.Response:
        """The answer to GET ``url`` (any status but 3xx, 429 and 5xx, which are followed or retried)."""
        for _ in range(_MAX_REDIRECTS + 1):
            response = self._attempts(url, limit)
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            target = urljoin(url, response.headers.get("Location", ""))
            if not _same_site(url, target):
                raise WebError(f"GET {redact_url(url)} redirects to another site ({redact_url(target)}); "
                               "the platform only follows redirects within the site", url=redact_url(url))
            url = target
        raise WebError(f"GET {redact_url(url)}: more than {_MAX_REDIRECTS} redirects", url=redact_url(url))

    def _attempts(self, url: str, limit: int) -> httpx.Response:
        def attempt() -> httpx.Response:
            if self.bucket is not None:
                self.bucket.acquire()
            try:
                response = self.client.send(self.client.build_request("GET", url), stream=True)
            except httpx.HTTPError as exc:
                if not _retryable_transport_error(exc):
                    raise WebError(f"GET {redact_url(url)} failed: {type(exc).__name__}: {exc}",
                                   url=redact_url(url)) from None
                raise _TryAgain(f"{type(exc).__name__}: {exc}") from None
            if response.status_code == 429 or response.status_code >= 500:
                response.close()
                raise _TryAgain(f"HTTP {response.status_code}", parse_retry_after(response.headers.get("Retry-After")))
            try:
                return read_capped(response, limit, what=lambda: f"GET {redact_url(url)}")
            except RestError as exc:
                raise WebError(str(exc).replace("max_page_bytes", "max_page_mb"), url=redact_url(url)) from None
            except httpx.HTTPError as exc:
                raise _TryAgain(f"{type(exc).__name__}: {exc}") from None

        try:
            return self.retrier(attempt, lambda: f"GET {redact_url(url)}")
        except GaveUp as gave_up:
            raise WebError(f"GET {redact_url(url)} gave up after {gave_up.attempts} attempts; last: {gave_up.last}",
                           url=redact_url(url), retryable=True) from None


def read_robots(fetcher: _Fetcher, base_url: str) -> urllib.robotparser.RobotFileParser:
    """The site's ``robots.txt``, read as RFC 9309 says (4xx: everything allowed; unreachable: nothing)."""
    robots = urllib.robotparser.RobotFileParser()
    url = urljoin(base_url.rstrip("/") + "/", "/robots.txt")
    try:
        response = fetcher.get(url, _ROBOTS_MAX_BYTES)
    except WebError as exc:  # unreachable, or larger than any robots.txt (the platform then reads nothing)
        log.warning("%s: robots.txt unreachable (%s); nothing of the site is read", base_url, exc)
        robots.disallow_all = True
        return robots
    if 400 <= response.status_code < 500:
        robots.allow_all = True
    elif response.status_code >= 300:
        robots.disallow_all = True
    else:
        robots.parse(response.content.decode("utf-8", "replace").splitlines())
    return robots


def _spacing(source: WebSource, robots: urllib.robotparser.RobotFileParser) -> float:
    """Seconds between two requests: the source's rate or the site's wish, whichever is slower."""
    seconds = 1.0 / source.rate_limit if source.rate_limit else 0.0
    delay = robots.crawl_delay(source.user_agent)
    if delay:
        seconds = max(seconds, float(delay))
    rate = robots.request_rate(source.user_agent)
    if rate and rate.requests:
        seconds = max(seconds, rate.seconds / rate.requests)
    return seconds


def fetch_pages(source: WebSource, wanted: Collection[str], *, transport: httpx.BaseTransport | None = None,
                sleep: Callable[[float], None] = time.sleep, rng: Callable[[], float] | None = None,
                clock: Callable[[], float] = time.monotonic) -> Iterator[WebPage]:
    """Read ``source``'s list page by page (see the module docstring); ``wanted``: the headers its table must have.

    Raises :class:`WebError` naming the page for a page that cannot be fetched or read, one that
    ``robots.txt`` disallows, one without the table, and past ``caps.max_pages``.
    """
    headers = {"User-Agent": source.user_agent, "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"}
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=source.ca_bundle) if source.ca_bundle else True
    timeout = httpx.Timeout(source.read_timeout, connect=source.connect_timeout)
    with httpx.Client(headers=headers, timeout=timeout, verify=verify, transport=transport,
                      follow_redirects=False) as client:
        fetcher = _Fetcher(source, client, None, sleep, rng or random.random)
        robots = read_robots(fetcher, source.base_url)
        spacing = _spacing(source, robots)
        if spacing > 0:
            fetcher.bucket = TokenBucket(1.0 / spacing, 1, clock=clock, sleep=sleep)
        url: str | None = source.page_url(1)
        seen: set[str] = set()
        previous_table: str | None = None
        number = 0
        while url is not None:
            number += 1
            if number > source.caps.max_pages:
                raise WebError(f"{source.name}: more than max_pages ({source.caps.max_pages}) pages in one run; "
                               "raise max_pages for this source if the list is that long", url=redact_url(url))
            if not robots.can_fetch(source.user_agent, url):
                raise WebError(f"GET {redact_url(url)}: the site's robots.txt disallows this page for "
                               f"{source.user_agent.split()[0]}; ask the department to allow it or to publish the "
                               "list another way", url=redact_url(url))
            seen.add(url)
            response = fetcher.get(url, source.caps.max_page_bytes)
            if response.status_code == 404 and number > 1 and source.pagination.kind in ("param", "pattern"):
                return  # past the last page of a numbered list
            if response.status_code != 200:
                raise WebError(f"GET {redact_url(url)} answered HTTP {response.status_code}", url=redact_url(url))
            content_type = response.headers.get("Content-Type")
            try:
                page = read_page(decode_html(response.content, content_type), url=url, wanted=wanted,
                                 max_records=source.caps.max_page_records,
                                 links=source.pagination.kind == "next_link")
            except HtmlRefused as exc:
                raise WebError(f"GET {redact_url(url)}: {exc}", url=redact_url(url)) from None
            if page.table is None:
                raise WebError(f"GET {redact_url(url)}: no table on the page has the columns "
                               f"{'、'.join(wanted)} ({page.tables} table(s) on the page); the page layout changed "
                               "or the address is wrong", url=redact_url(url))
            fingerprint = hashlib.sha256(repr(page.table.rows).encode()).hexdigest()
            if not page.table.rows or fingerprint == previous_table:
                return  # an empty list page, or a site answering its last page for any larger number
            previous_table = fingerprint
            parts = urlsplit(url)
            reference = parts.path + (f"?{parts.query}" if parts.query else "")
            yield WebPage(number, redact_url(url), reference, response.content, content_type, page.table, page.tables)
            url = _next_url(source, number, page.links, url, seen)


def _next_url(source: WebSource, number: int, links: list[tuple[str, str]], url: str, seen: set[str]) -> str | None:
    kind = source.pagination.kind
    if kind == "none":
        return None
    if kind in ("param", "pattern"):
        return source.page_url(number + 1)
    wanted = {t.lower() for t in source.pagination.next_texts}
    for text, target in links:
        if text.lower() in wanted and target not in seen and _same_site(url, target):
            return target
    return None
