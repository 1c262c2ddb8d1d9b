"""SOAP (WSDL) department interfaces through zeep, hardened, paged like the REST connector.

* The WSDL is a file kept in the repository (``wsdl_path``); it is never fetched at run time.
  :class:`LockedTransport` only reads local documents inside the WSDL's own folder, refuses
  every GET, and POSTs to nothing but the configured endpoint — so a WSDL or XSD
  ``<import location="http://…">`` cannot make the platform call anywhere (SSRF), and the
  ``soap:address`` written in the WSDL is ignored in favour of the configured one.
* zeep parses with ``strict=True, xml_huge_tree=False, forbid_dtd/entities/external=True``;
  on top of that every response body is checked with :func:`huiju_connectors.safe_xml.parse_xml`
  first, so XXE, entity bombs and external DTDs are refused with :class:`UnsafeXml` before
  zeep sees them.
* Faults are classified: ``Client``/``soap:Sender`` (or a configured code) is a
  :class:`SoapBusinessFault` — terminal, its message goes back to the department;
  ``Server``/``soap:Receiver``, timeouts, connection errors and HTTP 5xx/429 are retried under
  the source's :class:`~huiju_connectors.retry.RetryPolicy`, as every connector's failures are.
* :func:`fetch_soap_pages` yields the same :class:`~huiju_connectors.rest.Page` as REST, driven
  by the same engine (:func:`~huiju_connectors.rest.paginate`): same cursor, same incremental
  guarantee (see :mod:`huiju_connectors.rest`).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, urlparse
from urllib.request import url2pathname

import requests
import zeep
import zeep.exceptions
from zeep.helpers import serialize_object
from zeep.loader import parse_xml as zeep_parse_xml
from zeep.wsse.username import UsernameToken

from .rest.body import json_path
from .rest.client import HttpEndpoint
from .rest.paging import Caps, Fetched, Incremental, Page, Pagination, paginate
from .retry import GaveUp, Retrier
from .safe_xml import MalformedXml, UnsafeXml, parse_xml

__all__ = [
    "DateWindow",
    "LockedTransport",
    "SoapBusinessFault",
    "SoapConfigError",
    "SoapCredentials",
    "SoapError",
    "SoapFault",
    "SoapSource",
    "classify_fault",
    "fetch_soap_pages",
    "hardened_settings",
    "make_client",
]

log = logging.getLogger(__name__)


class SoapError(Exception):
    """A terminal failure talking to a SOAP source."""


class SoapConfigError(SoapError):
    """The WSDL cannot be used as configured (missing, remote imports, unknown operation …)."""

    retryable = False  # the configuration must change first


class SoapFault(SoapError):
    """The service answered with a SOAP fault that is not retried.

    ``code`` is the faultcode as sent (e.g. ``soap:Client``); ``message`` the faultstring;
    ``detail`` the text of the ``detail`` element, if any.
    """

    def __init__(self, message: str, *, code: str | None, detail: str = "", operation: str = ""):
        super().__init__(f"SOAP fault from {operation or 'service'} [{code}]: {message}")
        self.code = code
        self.message = message
        self.detail = detail
        self.operation = operation


class SoapBusinessFault(SoapFault):
    """The department's service rejected the request itself (Client/Sender fault or a configured code).

    Terminal: retrying sends the same request. The message is meant for the department.
    """

    retryable = False


@dataclass(frozen=True)
class SoapCredentials:
    """WS-Security UsernameToken credentials (``use_digest``: PasswordDigest instead of PasswordText)."""

    username: str
    password: str
    use_digest: bool = False

    def __repr__(self) -> str:
        return f"SoapCredentials(username={self.username!r}, password=***, use_digest={self.use_digest})"


@dataclass(frozen=True)
class DateWindow:
    """A date-windowed operation: called for consecutive windows of ``days`` days from ``start``.

    Each call carries ``from_param`` (the window's first day) and ``to_param`` (its last day
    with ``inclusive_end``, else the day after it), as ISO dates. Only *closed* windows are
    read — those ending before the run's ``today`` — each once: the cursor holds the next
    window, so a run resumes inside a window after a crash and moves on after its last page.
    A record the department adds to a window already read is not fetched again (use an
    updated-since operation where the service has one).
    """

    from_param: str
    to_param: str
    start: str
    days: int = 1
    inclusive_end: bool = True

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("a date window spans at least one day")
        date.fromisoformat(self.start)  # a bad start date fails here, not mid-run

    def params(self, first: date) -> dict[str, str]:
        """The call's window parameters for the window starting on ``first``."""
        end = first + timedelta(days=self.days - (1 if self.inclusive_end else 0))
        return {self.from_param: first.isoformat(), self.to_param: end.isoformat()}


@dataclass(frozen=True)
class SoapSource(HttpEndpoint):
    """One paged SOAP operation of a department.

    ``records_path``: dotted path to the record list in the serialised result (e.g.
    ``persons.person``). The operation is called with ``params`` plus ``page_param``/``size_param``
    and, for incremental sources, ``incremental.since_param`` (or, for date-windowed
    operations, ``window``'s parameters: see :class:`DateWindow`). The last page is the one with
    fewer than ``page_size`` records. ``business_fault_codes``: extra faultcodes (local names,
    e.g. ``E1001``) that are business faults; ``retry_fault_codes``: extra ones to retry.
    ``service_name``/``port_name`` pick the port when the WSDL has several.
    """

    wsdl_path: str
    endpoint: str
    operation: str
    records_path: str
    page_param: str = "pageNo"
    size_param: str = "pageSize"
    first_page: int = 1
    page_size: int = 100
    params: Mapping[str, Any] = field(default_factory=dict)
    incremental: Incremental | None = None
    window: DateWindow | None = None
    service_name: str | None = None
    port_name: str | None = None
    business_fault_codes: tuple[str, ...] = ()
    retry_fault_codes: tuple[str, ...] = ()
    caps: Caps = field(default_factory=Caps)


def hardened_settings() -> zeep.Settings:
    """zeep settings the platform always uses: strict parsing, no DTDs, entities or external refs."""
    return zeep.Settings(
        strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )


def _normalise_address(address: str) -> str:
    parsed = urlparse(address)
    return parsed._replace(scheme=parsed.scheme.lower(), netloc=parsed.netloc.lower(), fragment="").geturl()


class LockedTransport(zeep.Transport):
    """A zeep transport that talks to exactly one endpoint and reads only vendored documents.

    * ``load`` (WSDL/XSD documents): local files inside ``document_root`` only; any URL with a
      network scheme, or a path outside the root, raises :class:`SoapConfigError` without I/O.
    * ``get``: always refused (document/literal services are POSTed).
    * ``post``: only to ``endpoint``; the response body is checked by ``safe_xml`` first and
      kept in ``last_response_body`` (the raw bytes archived with each page).
    """

    def __init__(
        self,
        document_root: str | Path,
        endpoint: str,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        ca_bundle: str | None = None,
        max_body_bytes: int = Caps.max_page_bytes,
    ) -> None:
        session = requests.Session()
        # TLS is always verified: the department's CA bundle if given, else the default roots.
        session.verify = ca_bundle or True
        super().__init__(timeout=read_timeout, operation_timeout=(connect_timeout, read_timeout),
                         session=session)
        # zeep mounts a file:// adapter on the session; nothing here should read files over HTTP calls.
        self.session.adapters.pop("file://", None)
        self.session.headers["User-Agent"] = "huiju-connectors"
        self.document_root = Path(document_root).resolve()
        self.endpoint = endpoint
        self.last_response_body: bytes = b""
        self.max_body_bytes = max_body_bytes
        self.refused: list[str] = []  # what was refused (for diagnostics and tests)

    def load(self, url: str) -> bytes:
        """Read a vendored WSDL/XSD document; refuse anything remote or outside the document root."""
        parsed = urlparse(str(url))
        if parsed.scheme not in ("", "file") and not (len(parsed.scheme) == 1 and str(url)[1:2] == ":"):
            self.refused.append(str(url))
            raise SoapConfigError(
                f"refused to load {url!r}: WSDL/XSD documents must be vendored next to the WSDL "
                f"under {self.document_root}, never fetched at run time"
            )
        raw_path = url2pathname(unquote(parsed.path)) if parsed.scheme == "file" else str(url)
        path = Path(raw_path).expanduser().resolve()
        if not path.is_relative_to(self.document_root):
            self.refused.append(str(url))
            raise SoapConfigError(
                f"refused to load {str(path)!r}: outside the WSDL folder {self.document_root}"
            )
        return path.read_bytes()

    def get(self, address: str, params: Any, headers: Any) -> requests.Response:
        """Refuse: the platform does not issue GETs to SOAP services."""
        self.refused.append(address)
        raise SoapConfigError(f"refused HTTP GET to {address!r}")

    def post(self, address: str, message: bytes | str, headers: Mapping[str, str]) -> requests.Response:
        """POST to the configured endpoint only, never following a redirect, reading at most ``max_body_bytes``.

        A redirect is refused rather than followed: requests re-sends a POST (and its
        UsernameToken) to wherever a 307/308 points. The answer is streamed and cut off at the
        cap, and hostile XML in it is refused before zeep parses it.
        """
        if _normalise_address(address) != _normalise_address(self.endpoint):
            self.refused.append(address)
            raise SoapConfigError(
                f"refused POST to {address!r}: the only allowed endpoint is {self.endpoint!r}"
            )
        response = self.session.post(address, data=message, headers=headers, timeout=self.operation_timeout,
                                     allow_redirects=False, stream=True)
        if response.is_redirect or 300 <= response.status_code < 400:
            response.close()
            self.refused.append(address)
            raise SoapError(f"{address}: answered HTTP {response.status_code} (a redirect); refused, the request "
                            "and its credentials were not re-sent elsewhere")
        response._content = self._read_capped(response, address)  # requests' own slot for a body read in full
        response._content_consumed = True
        self.last_response_body = response.content
        if response.content:
            # Not well-formed is not hostile: zeep reports malformed replies (an HTML error page) itself.
            with contextlib.suppress(MalformedXml):
                parse_xml(response.content, source=address)
        return response

    def _read_capped(self, response: requests.Response, address: str) -> bytes:
        declared = response.headers.get("Content-Length", "")
        try:
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                raise SoapError(f"{address}: the answer declares {declared} bytes, more than max_page_bytes "
                                f"({self.max_body_bytes})")
            chunks, size = [], 0
            for chunk in response.iter_content(1 << 16):
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise SoapError(f"{address}: the answer exceeds max_page_bytes ({self.max_body_bytes} bytes)")
                chunks.append(chunk)
        finally:
            response.close()
        return b"".join(chunks)


def make_client(
    source: SoapSource, credentials: SoapCredentials | None = None
) -> tuple[Any, LockedTransport]:
    """Load the vendored WSDL and return ``(service proxy bound to source.endpoint, transport)``.

    Raises :class:`SoapConfigError` when the WSDL is missing, imports remote documents, or has no
    such port/operation.
    """
    wsdl = Path(source.wsdl_path).resolve()
    if not wsdl.is_file():
        raise SoapConfigError(f"WSDL file not found: {wsdl}")
    transport = LockedTransport(
        wsdl.parent, source.endpoint, connect_timeout=source.connect_timeout,
        read_timeout=source.read_timeout, ca_bundle=source.ca_bundle, max_body_bytes=source.caps.max_page_bytes,
    )
    wsse = (
        UsernameToken(credentials.username, credentials.password, use_digest=credentials.use_digest)
        if credentials else None
    )
    try:
        client = zeep.Client(wsdl=str(wsdl), transport=transport, settings=hardened_settings(), wsse=wsse)
    except zeep.exceptions.ExternalReferenceForbidden as exc:
        raise SoapConfigError(
            f"WSDL {wsdl.name} imports a remote document ({exc}); vendor it next to the WSDL"
        ) from None
    except (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden) as exc:
        raise SoapConfigError(f"WSDL {wsdl.name} declares a DTD or entities ({exc!r}); refused") from None
    except zeep.exceptions.Error as exc:
        raise SoapConfigError(f"WSDL {wsdl.name} cannot be loaded: {exc}") from None

    binding_name = None
    for service in client.wsdl.services.values():
        if source.service_name and service.name != source.service_name:
            continue
        for port in service.ports.values():
            if source.port_name and port.name != source.port_name:
                continue
            binding_name = port.binding.name
            break
        if binding_name is not None:
            break
    if binding_name is None:
        raise SoapConfigError(
            f"WSDL {wsdl.name} has no port matching service={source.service_name!r} port={source.port_name!r}"
        )
    # Bind to the configured endpoint, never the soap:address written in the WSDL.
    service_proxy = client.create_service(binding_name, source.endpoint)
    try:
        getattr(service_proxy, source.operation)
    except AttributeError:
        raise SoapConfigError(f"WSDL {wsdl.name} has no operation {source.operation!r}") from None
    return service_proxy, transport


def _fault_local_code(code: str | None) -> str:
    if not code:
        return ""
    local = code.rsplit("}", 1)[-1].rsplit(":", 1)[-1]
    return local.split(".", 1)[0]  # SOAP 1.1 dotted subcodes: Client.InvalidParam → Client


def classify_fault(
    fault: zeep.exceptions.Fault,
    business_codes: tuple[str, ...] = (),
    retry_codes: tuple[str, ...] = (),
) -> str:
    """``"business"``, ``"retry"`` or ``"other"`` for a zeep fault, by its faultcode's local name."""
    full = (fault.code or "").rsplit("}", 1)[-1].rsplit(":", 1)[-1]
    local = _fault_local_code(fault.code)
    if full in business_codes or local in business_codes:
        return "business"
    if full in retry_codes or local in retry_codes:
        return "retry"
    if local in ("Client", "Sender"):
        return "business"
    if local in ("Server", "Receiver"):
        return "retry"
    return "other"


def _plain(value: Any) -> Any:
    """Serialised zeep values → JSON-ready Python (dates as ISO strings, Decimal as str)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # keeps every digit; the warehouse casts
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def _detail_text(detail: Any) -> str:
    if detail is None:
        return ""
    if isinstance(detail, str):
        return detail[:500]
    try:
        return " ".join(t.strip() for t in detail.itertext() if t.strip())[:500]
    except AttributeError:
        return str(detail)[:500]


class _TryAgain(Exception):
    """A failure worth another attempt: a server fault, a timeout, a dropped connection, HTTP 5xx or 429."""


def _call_with_retries(
    source: SoapSource,
    service: Any,
    transport: LockedTransport,
    kwargs: dict[str, Any],
    *,
    retrier: Retrier,
) -> tuple[Any, bytes]:
    operation = getattr(service, source.operation)
    where = f"{source.operation} at {source.endpoint}"

    def attempt() -> tuple[Any, bytes]:
        try:
            result = operation(**kwargs)
            return result, transport.last_response_body
        except zeep.exceptions.Fault as fault:
            kind = classify_fault(fault, source.business_fault_codes, source.retry_fault_codes)
            detail = _detail_text(fault.detail)
            if kind == "business":
                raise SoapBusinessFault(fault.message or "", code=fault.code, detail=detail,
                                        operation=source.operation) from None
            if kind == "other":
                raise SoapFault(fault.message or "", code=fault.code, detail=detail,
                                operation=source.operation) from None
            raise _TryAgain(f"server fault [{fault.code}]: {fault.message}") from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise _TryAgain(f"{type(exc).__name__}") from None
        except zeep.exceptions.TransportError as exc:
            if exc.status_code == 429 or (exc.status_code or 0) >= 500:
                raise _TryAgain(f"HTTP {exc.status_code}") from None
            # The body is not shown: it can hold citizens' data.
            raise SoapError(f"{where}: HTTP {exc.status_code} (body not shown, {len(exc.content or b'')} bytes)") \
                from None
        except (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden,
                zeep.exceptions.ExternalReferenceForbidden) as exc:
            # Normally safe_xml refuses these first (in LockedTransport.post); zeep is the backstop.
            raise UnsafeXml(f"SOAP response from {where} refused: {exc!r}") from None
        except (
            zeep.exceptions.XMLSyntaxError, zeep.exceptions.XMLParseError, zeep.exceptions.ValidationError
        ) as exc:
            raise SoapError(f"{where}: invalid response ({type(exc).__name__}; body not shown)") from None

    try:
        return retrier(attempt, where)
    except GaveUp as gave_up:
        raise SoapError(f"{where}: {gave_up}") from None


def _records_of_result(source: SoapSource, result: Any) -> list[dict[str, Any]]:
    """The records of an operation's result (as zeep deserialised the reply), at ``source.records_path``."""
    body = _plain(serialize_object(result, dict))
    try:
        records = json_path(body, source.records_path)
    except KeyError:
        records = None  # zeep leaves out an empty wrapper element
    if records is None:
        records = []
    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise SoapError(f"{source.operation}: {source.records_path!r} is not a list of records")
    return records


def reply_records(source: SoapSource, raw: bytes) -> list[dict[str, Any]]:
    """The records of a reply as received (a :class:`Page`'s ``raw_bytes``), decoded as :func:`fetch_soap_pages`
    decoded them: an archived page replayed without calling the department again.

    Only the vendored WSDL, the operation and ``records_path`` of ``source`` are used (nothing is sent).
    """
    service, transport = make_client(source)
    try:
        operation = service._binding.get(source.operation)
        with contextlib.suppress(MalformedXml):  # refused as at first delivery (LockedTransport.post)
            parse_xml(raw, source=f"the archive ({source.operation})")
        try:
            envelope = zeep_parse_xml(raw, transport, settings=hardened_settings())
            result = operation.process_reply(envelope)
        except (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden,
                zeep.exceptions.ExternalReferenceForbidden) as exc:
            raise UnsafeXml(f"archived SOAP reply of {source.operation} refused: {exc!r}") from None
        except (zeep.exceptions.XMLSyntaxError, zeep.exceptions.XMLParseError,
                zeep.exceptions.ValidationError) as exc:
            raise SoapError(f"{source.operation}: invalid archived reply ({type(exc).__name__}; body not shown)") \
                from None
    finally:
        transport.session.close()
    return _records_of_result(source, result)


def fetch_soap_pages(
    source: SoapSource,
    credentials: SoapCredentials | None = None,
    start_cursor: Mapping[str, Any] | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    today: date | None = None,
) -> Iterator[Page]:
    """Read a paged SOAP operation from ``start_cursor``, yielding :class:`Page` objects.

    Same contract as :func:`huiju_connectors.rest.fetch_pages`: land each page's records and
    store its ``next_cursor`` in one transaction. Records are plain dicts (dates as ISO
    strings); ``raw_bytes`` is the SOAP response envelope as received. Raises
    :class:`SoapBusinessFault` (terminal, for the department), :class:`SoapFault`,
    :class:`SoapError`, :class:`SoapConfigError` or :class:`~huiju_connectors.safe_xml.UnsafeXml`.

    A date-windowed source (``source.window``) reads every window closed before ``today``
    (default: the current date); its cursor adds ``window``, the first day of the window the
    position belongs to.
    """
    if source.window is not None and source.incremental is not None:
        raise SoapConfigError(f"{source.name or source.operation}: use either date windows or updated-since, not both")
    service, transport = make_client(source, credentials)
    retrier = source.retry.retrier(lambda failure: isinstance(failure, _TryAgain), sleep=sleep, rng=rng, logger=log)
    window_params: dict[str, str] = {}
    try:
        def fetch(since: Any, position: dict[str, Any]) -> Fetched:
            kwargs: dict[str, Any] = dict(source.params)
            kwargs.update(window_params)
            kwargs[source.page_param] = position["page"]
            kwargs[source.size_param] = source.page_size
            if source.incremental is not None and since is not None:
                kwargs[source.incremental.since_param] = str(since)
            result, raw = _call_with_retries(source, service, transport, kwargs, retrier=retrier)
            records = _records_of_result(source, result)
            reference = f"{source.operation}?" + urlencode(sorted((k, str(v)) for k, v in kwargs.items()))
            return Fetched(records=records, raw_bytes=raw, reference=reference, content_type="text/xml")

        log.info("fetching %s via %s (cursor: %s)", source.name or source.operation, source.endpoint,
                 "resume" if start_cursor else "none")
        pagination = Pagination(kind="page", first_page=source.first_page)
        if source.window is None:
            yield from paginate(fetch, pagination, source.page_size, source.incremental, start_cursor,
                                source_name=source.name or source.operation, caps=source.caps)
            return
        window, days = source.window, timedelta(days=source.window.days)
        until = today or date.today()
        cursor = dict(start_cursor or {})
        first = date.fromisoformat(str(cursor.pop("window", None) or window.start))
        inner: dict[str, Any] | None = cursor or None
        while first + days <= until:
            window_params.clear()
            window_params.update(window.params(first))
            for page in paginate(fetch, pagination, source.page_size, None, inner,
                                 source_name=source.name or source.operation, caps=source.caps):
                position = page.next_cursor.get("position")
                following = first
                if position is None:  # the window's last page: on to the next one, if it is closed
                    following = first + days
                    position = {"page": source.first_page} if following + days <= until else None
                yield replace(page, next_cursor={**page.next_cursor, "position": position,
                                                 "window": following.isoformat()})
            first, inner = first + days, None
    finally:
        transport.session.close()
