"""A department's document/literal SOAP service on loopback, paged, WS-Security (:mod:`huiju_demo.webservice`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from xml.sax.saxutils import escape

import defusedxml.ElementTree as DET
from huiju_connectors.rest import Pagination
from huiju_demo.webservice import Faults, Records, serving

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


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
    from ``tests/support/hostile_xml.py``) replaces every answer, to check that the client refuses it.
    """

    records: Sequence[dict[str, Any]]
    namespace: str
    operation: str
    records_path: str
    path: str = "/services/Service"
    pagination: Pagination = field(default_factory=lambda: Pagination(page_param="pageNo", size_param="pageSize"))
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
    hostile: bytes | None = None  # when set, every call is answered with this body
    calls: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._data = Records(list(self.records), self.updated_field, self.key_field)
        self._lock = threading.Lock()

    def extend(self, records: Sequence[dict[str, Any]]) -> None:
        """The department adds records (served from the next request on)."""
        with self._lock:
            self._data = Records(self._data.records + list(records), self.updated_field, self.key_field)

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
        paging = self.pagination
        try:
            page_no, page_size = int(args[paging.page_param]), int(args[paging.size_param])
        except (KeyError, ValueError):
            return "500 Internal Server Error", _fault("Client", "参数错误：缺少页码或每页条数")
        if page_no < 1 or not 1 <= page_size <= self.max_page_size:
            return "500 Internal Server Error", _fault(
                "Client", f"参数错误：{paging.size_param}={page_size} 超出范围 1-{self.max_page_size}")
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
        with serving(server, on_exit=self.faults.release):
            self.url = f"http://127.0.0.1:{server.server_port}{self.path}"
            yield self
