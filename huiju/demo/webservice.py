"""Simulated department web services: a REST/JSON gateway and a SOAP service, on loopback.

One implementation serves the demo's departments (:mod:`huiju.demo.simulators.rest` and
``.soap``), the channel integration tests and the ``rest_200k`` benchmark, so what the demo
shows is what the tests check.

Both services hold a list of records (dicts keyed by the department's own field names),
page them, filter them by an *inclusive* updated-since parameter ordered by the update time
(the contract of :mod:`huiju_connectors.rest`), check credentials the way real gateways do
(HMAC request signature or bearer token; WS-Security UsernameToken), and accept injected
faults so tests can see retries. Servers run in a daemon thread and stop on exit of
:meth:`running`; bodies are deterministic, so the same records give byte-identical pages.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import json
import secrets
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from xml.sax.saxutils import escape

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


@dataclass
class _Records:
    """Records ordered by update time (then ``key_field``), with a fast inclusive ``>= since`` lookup."""

    records: list[dict[str, Any]]
    updated_field: str | None
    key_field: str | None = None

    def __post_init__(self) -> None:
        if self.updated_field:
            # Stable sort: records sharing a time keep the order they were given in (or their key's).
            updated, key = self.updated_field, self.key_field
            self.records = sorted(self.records, key=lambda r: (str(r[updated]), str(r[key]) if key else ""))
            self._stamps = [str(r[self.updated_field]) for r in self.records]

    def since(self, since: str | None) -> list[dict[str, Any]]:
        if not since or not self.updated_field:
            return self.records
        return self.records[bisect.bisect_left(self._stamps, since):]


@dataclass
class Faults:
    """Faults to inject: each entry ``(params that must match, kind)`` is used once.

    Kinds: ``"500"``, ``"429"`` (with ``Retry-After: 1``), ``"400"`` (a refused parameter),
    ``"slow"`` (answers after ``slow_seconds``), ``"commit-then-timeout"`` (the service counts
    the page as delivered, then answers only after ``slow_seconds``: a client that timed out
    asks again). ``block_at``: the n-th request (1-based) and every later one wait for
    ``release`` — a test kills the client while it waits.
    """

    pending: list[tuple[dict[str, str], str]] = field(default_factory=list)
    slow_seconds: float = 1.5
    block_at: int | None = None
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, params: dict[str, str]) -> str | None:
        with self.lock:
            for i, (match, kind) in enumerate(self.pending):
                if all(params.get(k) == v for k, v in match.items()):
                    del self.pending[i]
                    return kind
        return None


def gateway_canonical(method: str, raw_path: str, body: bytes, timestamp: str, nonce: str) -> str:
    """The gateway's own rendering of the documented signature string (see ``http_auth.canonical_request``).

    Written from the specification, not by calling the client's code, so a test of the two
    together checks that both sides agree.
    """
    parts = urlsplit(raw_path)
    query = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~"))
                   for k, v in parse_qsl(parts.query, keep_blank_values=True))
    return "\n".join([method, unquote(parts.path), "&".join(f"{k}={v}" for k, v in query), timestamp, nonce,
                      hashlib.sha256(body).hexdigest()])


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at the dotted ``path`` of ``body``, creating objects on the way."""
    *parents, last = path.split(".")
    for step in parents:
        body = body.setdefault(step, {})
    body[last] = value


def _nest(path: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for step in reversed(path.split(".")):
        out = {step: out}
    return out


@dataclass
class RestGateway:
    """A department's REST/JSON gateway: paged, with an updated-since filter, authenticated.

    ``pagination``: ``"page"`` (``page_param``/``size_param``), ``"offset"`` (``offset_param``
    = records to skip, ``size_param``) or ``"cursor"`` (``cursor_param`` = the opaque token the
    previous page gave at ``next_cursor_path``, absent on the last page). ``records_path``
    places the page's list in the body (``data.list`` gives ``{"code": 0, "msg": "成功",
    "data": {"list": [...], "total": n}}``; ``""`` sends the bare list). Records are served
    ordered by ``updated_field`` then ``key_field``. ``auth``: ``"hmac"`` checks
    ``X-App-Key``/``X-Timestamp``/``X-Nonce``/``X-Signature`` with ``app_key``/``secret``;
    ``"token"`` checks ``Authorization: Bearer <secret>``; ``"oauth2"`` issues tokens at
    ``token_path`` (client credentials ``app_key``/``secret`` in HTTP Basic) and accepts those in
    ``tokens``; ``"none"`` checks nothing. ``requests`` lists every GET's parameters,
    ``served`` those the gateway believes it delivered.
    """

    records: Sequence[dict[str, Any]]
    path: str = "/api/v1/records"
    records_path: str = "data.list"
    pagination: str = "page"
    page_param: str = "page"
    size_param: str = "size"
    first_page: int = 1
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    next_cursor_path: str = "next_cursor"
    since_param: str | None = None
    updated_field: str | None = None
    key_field: str | None = None
    auth: str = "none"
    app_key: str = ""
    secret: str = field(default="", repr=False)
    token_path: str = "/oauth/token"  # noqa: S105 - a URL path, not a secret
    token_seconds: int = 120
    max_page_size: int = 1000
    faults: Faults = field(default_factory=Faults)
    requests: list[dict[str, str]] = field(default_factory=list)
    served: list[dict[str, str]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set, repr=False)
    token_requests: int = 0
    url: str = ""

    def __post_init__(self) -> None:
        if self.pagination not in ("page", "offset", "cursor"):
            raise ValueError(f"unknown pagination {self.pagination!r}")
        self._data = _Records(list(self.records), self.updated_field, self.key_field)
        self._lock = threading.Lock()

    @property
    def current(self) -> list[dict[str, Any]]:
        """The records as served now (ordered)."""
        return list(self._data.records)

    def extend(self, records: Sequence[dict[str, Any]]) -> None:
        """The department adds records (served from the next request on)."""
        with self._lock:
            self._data = _Records(self._data.records + list(records), self.updated_field, self.key_field)

    def update(self, key: Any, **fields: Any) -> None:
        """The department updates the record whose ``key_field`` is ``key`` (it moves in the order)."""
        with self._lock:
            rows = [({**r, **fields} if r[self.key_field or ""] == key else r) for r in self._data.records]
            self._data = _Records(rows, self.updated_field, self.key_field)

    def issue_token(self, handler: BaseHTTPRequestHandler, form: dict[str, str]) -> tuple[int, Any]:
        """Answer a client-credentials token request."""
        with self._lock:
            self.token_requests += 1
        basic = "Basic " + base64.b64encode(f"{self.app_key}:{self.secret}".encode()).decode()
        if form.get("grant_type") != "client_credentials" or handler.headers.get("Authorization") != basic:
            return 401, {"error": "invalid_client"}
        token = secrets.token_hex(16)
        with self._lock:
            self.tokens.add(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.token_seconds}

    def _authorised(self, handler: BaseHTTPRequestHandler) -> bool:
        h = handler.headers
        if self.auth == "token":
            return hmac.compare_digest(h.get("Authorization", ""), f"Bearer {self.secret}")
        if self.auth == "oauth2":
            given = h.get("Authorization", "")
            return given.startswith("Bearer ") and given[7:] in self.tokens
        if self.auth == "hmac":
            ts, nonce = h.get("X-Timestamp", ""), h.get("X-Nonce", "")
            canonical = gateway_canonical("GET", handler.path, b"", ts, nonce)
            expected = base64.b64encode(hmac.new(self.secret.encode(), canonical.encode(),
                                                 hashlib.sha256).digest()).decode()
            fresh = ts.isdigit() and abs(time.time() * 1000 - int(ts)) < 300_000  # gateways allow 5 minutes
            return (h.get("X-App-Key") == self.app_key and fresh
                    and hmac.compare_digest(h.get("X-Signature", ""), expected))
        return True

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body, extra headers) for one GET."""
        parts = urlsplit(handler.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self.requests.append(params)
            n = len(self.requests)
        if parts.path != self.path:
            return 404, {"code": 404, "msg": "接口不存在"}, {}
        if not self._authorised(handler):
            return 401, {"code": 401, "msg": "签名校验失败"}, {}
        if self.faults.block_at is not None and n >= self.faults.block_at:
            self.faults.release.wait(60)
        fault = self.faults.take(params)
        if fault == "500":
            return 500, {"code": 500, "msg": "系统内部错误"}, {}
        if fault == "429":
            return 429, {"code": 429, "msg": "请求过于频繁"}, {"Retry-After": "1"}
        if fault == "400":
            return 400, {"code": 400, "msg": f"参数错误：{self.size_param} 超出范围"}, {}
        if fault == "slow":
            time.sleep(self.faults.slow_seconds)
        if fault == "commit-then-timeout":
            with self._lock:
                self.served.append(params)  # the gateway believes it delivered the page
            time.sleep(self.faults.slow_seconds)
        try:
            size = int(params[self.size_param])
            if self.pagination == "page":
                start = (int(params.get(self.page_param, self.first_page)) - self.first_page) * size
            elif self.pagination == "offset":
                start = int(params.get(self.offset_param, 0))
            else:
                token = params.get(self.cursor_param)
                start = int(base64.b64decode(token)) if token else 0
        except (KeyError, ValueError):
            return 400, {"code": 400, "msg": f"参数错误：缺少或无效的分页参数 {self.size_param}"}, {}
        if not 1 <= size <= self.max_page_size or start < 0:
            return 400, {"code": 400, "msg": f"参数错误：每页条数应在 1-{self.max_page_size} 之间"}, {}
        rows = self._data.since(params.get(self.since_param) if self.since_param else None)
        chunk = rows[start:start + size]
        with self._lock:
            self.served.append(params)
        if not self.records_path:
            return 200, chunk, {}  # the body is the bare list
        body = {"code": 0, "msg": "成功", **_nest(self.records_path, chunk)}
        inner = body
        for step in self.records_path.split(".")[:-1]:
            inner = inner[step]
        inner["total"] = len(rows)
        if self.pagination == "cursor" and start + size < len(rows):
            _put(body, self.next_cursor_path, base64.b64encode(str(start + size).encode()).decode())
        return 200, body, {}

    @contextmanager
    def running(self, ssl_context: ssl.SSLContext | None = None) -> Iterator[RestGateway]:
        """Serve on ``127.0.0.1`` (a free port) until the block ends; ``self.url`` is the base URL.

        With ``ssl_context`` (a server context holding the certificate) it serves HTTPS.
        """
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real gateways do
            # Headers and body leave in separate writes: with Nagle on, the body would wait for the
            # client's delayed ACK (40 ms a response on Linux).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # requests carry signatures; nothing about them goes to logs

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                if gateway.auth == "oauth2" and urlsplit(self.path).path == gateway.token_path:
                    self._send(*gateway.issue_token(self, form), {})
                else:
                    self._send(404, {"code": 404, "msg": "接口不存在"}, {})

            def do_GET(self) -> None:
                self._send(*gateway.answer(self))

            def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
                # An unpaired surrogate (some departments' data holds them) goes out as its JSON
                # escape, "\\ud800", as gateways written in Java send it.
                text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
                body = text.encode("utf-8", "backslashreplace")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away (timed out or was killed)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if ssl_context is not None:
            server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            self.faults.release.set()
            server.shutdown()
            server.server_close()


# --------------------------------------------------------------------------------------------
# SOAP
# --------------------------------------------------------------------------------------------


class _QuietWsgi(WSGIRequestHandler):
    disable_nagle_algorithm = True  # see RestGateway.running
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWsgiServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _fault(code: str, message: str) -> bytes:
    # The detail carries the service's own error code, as department systems usually add.
    return (f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>'
            f"<soap:Fault><faultcode>soap:{code}</faultcode><faultstring>{escape(message)}</faultstring>"
            f"<detail><errorCode>{code.upper()}-1</errorCode></detail>"
            "</soap:Fault></soap:Body></soap:Envelope>").encode()


def _token_ok(security: Any, username: str, password: str) -> bool:
    """Check a WS-Security UsernameToken (PasswordText or PasswordDigest)."""
    token = security.find(f"{{{WSSE}}}UsernameToken") if security is not None else None
    if token is None or token.findtext(f"{{{WSSE}}}Username") != username:
        return False
    given = token.find(f"{{{WSSE}}}Password")
    if given is None:
        return False
    if given.get("Type", "").endswith("#PasswordDigest"):
        nonce = base64.b64decode(token.findtext(f"{{{WSSE}}}Nonce") or "")
        created = (token.findtext(f"{{{WSU}}}Created") or "").encode()
        digest = base64.b64encode(hashlib.sha1(nonce + created + password.encode()).digest()).decode()  # noqa: S324 - WS-Security defines SHA-1
        return hmac.compare_digest(given.text or "", digest)
    return hmac.compare_digest(given.text or "", password)


@dataclass
class SoapService:
    """A department's document/literal SOAP operation answering paged record queries.

    The response is ``<{operation}Response><total/><{list}><{item}>…</{item}></{list}>``, with
    ``records_path = "{list}.{item}"``, every field an element in ``namespace`` (empty values
    are left out, as ``minOccurs="0"`` allows). ``username``/``password`` (when set) are
    checked in the WS-Security header; a wrong one is a ``Client`` fault. Records are served
    ordered by ``updated_field`` then ``key_field``. Faults carry ``<detail><errorCode>`` (e.g.
    ``CLIENT-1``); fault ``"500"`` answers a ``Server`` fault. ``hostile`` (e.g.
    from :func:`hostile_xml`) replaces every answer, to check that the client refuses it.
    """

    records: Sequence[dict[str, Any]]
    namespace: str
    operation: str
    records_path: str
    path: str = "/services/Service"
    page_param: str = "pageNo"
    size_param: str = "pageSize"
    since_param: str | None = None
    updated_field: str | None = None
    key_field: str | None = None
    window_field: str | None = None  # date-windowed: records whose date here is in [from, to]
    from_param: str = "dateFrom"
    to_param: str = "dateTo"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    max_page_size: int = 1000
    faults: Faults = field(default_factory=Faults)
    hostile: bytes | None = None  # when set, every call is answered with this body (see hostile_xml)
    calls: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._data = _Records(list(self.records), self.updated_field, self.key_field)
        self._lock = threading.Lock()

    def extend(self, records: Sequence[dict[str, Any]]) -> None:
        """The department adds records (served from the next request on)."""
        with self._lock:
            self._data = _Records(self._data.records + list(records), self.updated_field, self.key_field)

    def _body(self, rows: list[dict[str, Any]], total: int) -> bytes:
        list_el, item_el = self.records_path.split(".")
        items = "".join(
            f"<tns:{item_el}>" + "".join(f"<tns:{k}>{escape(str(v))}</tns:{k}>" for k, v in row.items()
                                         if v not in (None, "")) + f"</tns:{item_el}>"
            for row in rows)
        return (f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP_ENV}" '
                f'xmlns:tns="{self.namespace}"><soap:Body><tns:{self.operation}Response><tns:total>{total}</tns:total>'
                f"<tns:{list_el}>{items}</tns:{list_el}></tns:{self.operation}Response></soap:Body></soap:Envelope>"
                ).encode()

    def answer(self, envelope_bytes: bytes) -> tuple[str, bytes]:
        """(HTTP status line, body) for one POSTed envelope."""
        import defusedxml.ElementTree as DET

        envelope = DET.fromstring(envelope_bytes, forbid_dtd=True)
        request = envelope.find(f"{{{SOAP_ENV}}}Body/{{{self.namespace}}}{self.operation}")
        if request is None:
            return "500 Internal Server Error", _fault("Client", "不支持的操作")
        args = {child.tag.split("}")[1]: child.text or "" for child in request}
        with self._lock:
            self.calls.append(args)
            n = len(self.calls)
        if self.hostile is not None:
            return "200 OK", self.hostile
        if self.username is not None:
            header = envelope.find(f"{{{SOAP_ENV}}}Header")
            security = header.find(f"{{{WSSE}}}Security") if header is not None else None
            if not _token_ok(security, self.username, self.password or ""):
                return "500 Internal Server Error", _fault("Client", "认证失败：用户名或密码错误")
        if self.faults.block_at is not None and n >= self.faults.block_at:
            self.faults.release.wait(60)
        fault = self.faults.take(args)
        if fault in ("500", "429"):
            return "500 Internal Server Error", _fault("Server", "数据库连接超时，请稍后重试")
        if fault == "slow":
            time.sleep(self.faults.slow_seconds)
        try:
            page_no, page_size = int(args[self.page_param]), int(args[self.size_param])
        except (KeyError, ValueError):
            return "500 Internal Server Error", _fault("Client", "参数错误：缺少页码或每页条数")
        if page_no < 1 or not 1 <= page_size <= self.max_page_size:
            return "500 Internal Server Error", _fault(
                "Client", f"参数错误：{self.size_param}={page_size} 超出范围 1-{self.max_page_size}")
        rows = self._data.since(args.get(self.since_param) if self.since_param else None)
        if self.window_field and (self.from_param in args or self.to_param in args):
            low, high = args.get(self.from_param) or "", args.get(self.to_param) or "9999"
            rows = [r for r in rows if low <= str(r[self.window_field])[:10] <= high]
        start = (page_no - 1) * page_size
        return "200 OK", self._body(rows[start:start + page_size], len(rows))

    @contextmanager
    def running(self) -> Iterator[SoapService]:
        """Serve on ``127.0.0.1`` (a free port) until the block ends; ``self.url`` is the endpoint."""
        service = self

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if environ["REQUEST_METHOD"] != "POST" or environ.get("PATH_INFO") != service.path:
                status, body = "404 Not Found", b""
            else:
                status, body = service.answer(environ["wsgi.input"].read(length))
            start_response(status, [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(body)))])
            return [body]

        server = make_server("127.0.0.1", 0, app, server_class=_ThreadingWsgiServer, handler_class=_QuietWsgi)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_port}{self.path}"
        try:
            yield self
        finally:
            self.faults.release.set()
            server.shutdown()
            server.server_close()


def hostile_xml(kind: str, canary_url: str = "http://127.0.0.1:9") -> bytes:
    """A hostile SOAP response: ``xxe`` (external entity), ``billion-laughs`` (entity bomb, 10**9
    expansions) or ``external-dtd`` (a DTD fetched from ``canary_url``, which must never be hit)."""
    body = f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body><x>{{}}</x></soap:Body></soap:Envelope>'
    if kind == "xxe":
        return ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                + body.format("&e;")).encode()
    if kind == "billion-laughs":
        entities = '<!ENTITY lol "lol">' + "".join(
            f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10))
        return (f'<?xml version="1.0"?><!DOCTYPE lolz [{entities}]>' + body.format("&lol9;")).encode()
    if kind == "external-dtd":
        return (f'<?xml version="1.0"?><!DOCTYPE soap:Envelope SYSTEM "{canary_url}/evil.dtd">'
                + body.format("")).encode()
    raise ValueError(f"unknown hostile kind {kind!r} (xxe, billion-laughs, external-dtd)")


HOSTILE_KINDS = ("xxe", "billion-laughs", "external-dtd")


@dataclass
class Canary:
    """An address that must never be contacted (a WSDL import, an external DTD): it records every hit."""

    hits: list[str] = field(default_factory=list)
    url: str = ""

    @contextmanager
    def running(self) -> Iterator[Canary]:
        """Serve on ``127.0.0.1`` (a free port) until the block ends; ``self.url`` is its base URL."""
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _hit(self) -> None:
                canary.hits.append(f"{self.command} {self.path}")
                body = b'<?xml version="1.0"?><x/>'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _hit

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def stamped(records: Sequence[dict[str, Any]], updated_field: str | None, day: date) -> list[dict[str, Any]]:
    """The records as a department system serves them: empty values as null, an update time each.

    Update times are one second apart from 08:00 of ``day`` in the records' order, so a
    service ordering by update time serves them in the order given (row ``i`` of the demo's
    manifest is record ``i``).
    """
    start = datetime.combine(day, datetime.min.time()) + timedelta(hours=8)
    out = []
    for i, record in enumerate(records):
        row: dict[str, Any] = {k: (v if v != "" else None) for k, v in record.items()}
        if updated_field:
            row[updated_field] = (start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S")
        out.append(row)
    return out
