"""A department's REST/JSON gateway on loopback: paged, updated-since, authenticated (:mod:`huiju_demo.webservice`)."""

from __future__ import annotations

import base64
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from huiju_connectors.rest import Pagination
from huiju_demo.webservice import Faults, QuietHandler, Records, serving


def gateway_canonical(method: str, raw_path: str, body: bytes, timestamp: str, nonce: str,
                      algorithm: str = "sha256") -> str:
    """The gateway's own rendering of the documented signature string (see ``http_auth.canonical_request``).

    Written from the specification, not by calling the client's code, so a test of the two
    together checks that both sides agree.
    """
    parts = urlsplit(raw_path)
    query = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~"))
                   for k, v in parse_qsl(parts.query, keep_blank_values=True))
    return "\n".join([method, unquote(parts.path), "&".join(f"{k}={v}" for k, v in query), timestamp, nonce,
                      hashlib.new(algorithm, body).hexdigest()])


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

    ``pagination``: how it pages, described as the connector describes a source
    (:class:`huiju_connectors.rest.Pagination`): page numbers, offsets, or an opaque token the
    previous page gave at ``next_cursor_path`` (absent on the last page). ``records_path``
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
    pagination: Pagination = field(default_factory=Pagination)
    since_param: str | None = None
    updated_field: str | None = None
    key_field: str | None = None
    auth: str = "none"
    algorithm: str = "sha256"  # hmac: sha256, or sm3 (国密) as the provincial platform signs
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
        self._data = Records(list(self.records), self.updated_field, self.key_field)
        self._lock = threading.Lock()

    @property
    def current(self) -> list[dict[str, Any]]:
        """The records as served now (ordered)."""
        return list(self._data.records)

    def extend(self, records: Sequence[dict[str, Any]]) -> None:
        """The department adds records (served from the next request on)."""
        with self._lock:
            self._data = Records(self._data.records + list(records), self.updated_field, self.key_field)

    def update(self, key: Any, **fields: Any) -> None:
        """The department updates the record whose ``key_field`` is ``key`` (it moves in the order)."""
        with self._lock:
            rows = [({**r, **fields} if r[self.key_field or ""] == key else r) for r in self._data.records]
            self._data = Records(rows, self.updated_field, self.key_field)

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
            canonical = gateway_canonical("GET", handler.path, b"", ts, nonce, self.algorithm)
            expected = base64.b64encode(hmac.new(self.secret.encode(), canonical.encode(),
                                                 self.algorithm).digest()).decode()
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
            return 400, {"code": 400, "msg": f"参数错误：{self.pagination.size_param} 超出范围"}, {}
        if fault == "slow":
            time.sleep(self.faults.slow_seconds)
        if fault == "commit-then-timeout":
            with self._lock:
                self.served.append(params)  # the gateway believes it delivered the page
            time.sleep(self.faults.slow_seconds)
        paging = self.pagination
        try:
            size = int(params[paging.size_param])
            if paging.kind == "page":
                start = (int(params.get(paging.page_param, paging.first_page)) - paging.first_page) * size
            elif paging.kind == "offset":
                start = int(params.get(paging.offset_param, 0))
            else:
                token = params.get(paging.cursor_param)
                start = int(base64.b64decode(token)) if token else 0
        except (KeyError, ValueError):
            return 400, {"code": 400, "msg": f"参数错误：缺少或无效的分页参数 {paging.size_param}"}, {}
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
        if paging.kind == "cursor" and start + size < len(rows):
            _put(body, paging.next_cursor_path, base64.b64encode(str(start + size).encode()).decode())
        return 200, body, {}

    @contextmanager
    def running(self, ssl_context: ssl.SSLContext | None = None) -> Iterator[RestGateway]:
        """Serve on ``127.0.0.1`` (a free port) until the block ends; ``self.url`` is the base URL.

        With ``ssl_context`` (a server context holding the certificate) it serves HTTPS.
        """
        gateway = self

        class Handler(QuietHandler):
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
        with serving(server, on_exit=self.faults.release):
            scheme = "https" if ssl_context is not None else "http"
            self.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
            yield self
