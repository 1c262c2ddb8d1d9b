"""SOAP connector against a real WSGI service on loopback serving the vendored WSDL's operation.

The service (wsgiref in a thread) parses each request envelope with defusedxml, checks the
WS-Security UsernameToken, and answers ``QueryPersons`` from a templated response; faults are
injected per test. Hostile responses come from the shared service of
:mod:`huiju.demo.webservice` (``SoapService.hostile``), and its *canary* counts every request it
gets: the platform must never reach it.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from xml.sax.saxutils import escape

import defusedxml.ElementTree as DET
import pytest
from huiju_connectors.rest import Incremental, RetryPolicy
from huiju_connectors.safe_xml import UnsafeXml
from huiju_connectors.soap import (
    LockedTransport,
    SoapBusinessFault,
    SoapConfigError,
    SoapCredentials,
    SoapError,
    SoapSource,
    fetch_soap_pages,
    make_client,
)

from huiju.demo.webservice import HOSTILE_KINDS, Canary, SoapService, hostile_xml

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "soap"
WSDL = FIXTURES / "gaj_population.wsdl"
TNS = "http://gaj.example.gov.cn/population/v1"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(server: Any) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


@dataclass
class Service:
    """State of the fake 公安局 population service."""

    persons: list[dict[str, str]] = field(default_factory=list)
    credentials: tuple[str, str] | None = None
    server_faults: int = 0  # answer this many requests with a Server fault first
    calls: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def add(self, pid: str, updated_at: str) -> None:
        self.persons.append({"id": pid, "name": f"测试{pid}", "idCardNo": f"11010119900101{pid[-4:]:0>4}",
                             "gender": "1", "birthDate": "1990-01-01", "address": "某市某区 <1号>",
                             "updatedAt": updated_at})


def _fault(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>'
        f"<soap:Fault><faultcode>soap:{code}</faultcode><faultstring>{escape(message)}</faultstring>"
        f"<detail><errorCode>{code.upper()}-1</errorCode></detail></soap:Fault></soap:Body></soap:Envelope>"
    ).encode()


def _person_xml(p: dict[str, str]) -> str:
    return "<tns:person>" + "".join(f"<tns:{k}>{escape(v)}</tns:{k}>" for k, v in p.items()) + "</tns:person>"


def _check_token(security: Any, expected: tuple[str, str]) -> bool:
    if security is None:
        return False
    token = security.find(f"{{{WSSE}}}UsernameToken")
    if token is None:
        return False
    user = token.findtext(f"{{{WSSE}}}Username")
    pw_el = token.find(f"{{{WSSE}}}Password")
    if user != expected[0] or pw_el is None:
        return False
    if pw_el.get("Type", "").endswith("#PasswordDigest"):
        nonce = base64.b64decode(token.findtext(f"{{{WSSE}}}Nonce") or "")
        created = token.findtext(f"{{{WSU}}}Created") or ""
        digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + expected[1].encode()).digest()).decode()
        return pw_el.text == digest
    return pw_el.text == expected[1]


def make_app(svc: Service) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        def reply(status: str, body: bytes) -> list[bytes]:
            start_response(status, [("Content-Type", "text/xml; charset=utf-8"),
                                    ("Content-Length", str(len(body)))])
            return [body]

        length = int(environ.get("CONTENT_LENGTH") or 0)
        envelope = DET.fromstring(environ["wsgi.input"].read(length), forbid_dtd=True)
        header = envelope.find(f"{{{SOAP_ENV}}}Header")
        request = envelope.find(f"{{{SOAP_ENV}}}Body/{{{TNS}}}QueryPersons")
        assert request is not None, "unexpected operation"
        args = {child.tag.split("}")[1]: child.text or "" for child in request}
        svc.calls.append(args)
        if svc.credentials is not None:
            security = header.find(f"{{{WSSE}}}Security") if header is not None else None
            if not _check_token(security, svc.credentials):
                return reply("500 Internal Server Error", _fault("Client", "认证失败: 用户名或密码错误"))
        if svc.server_faults > 0:
            svc.server_faults -= 1
            return reply("500 Internal Server Error", _fault("Server", "数据库连接超时"))
        page_no, page_size = int(args["pageNo"]), int(args["pageSize"])
        if page_no < 1 or not 1 <= page_size <= 100:
            message = f"参数错误: pageSize={page_size} 超出范围 1-100"
            return reply("500 Internal Server Error", _fault("Client", message))
        since = args.get("updatedSince")
        rows = sorted((p for p in svc.persons if not since or p["updatedAt"] >= since),
                      key=lambda p: (p["updatedAt"], p["id"]))
        chunk = rows[(page_no - 1) * page_size : page_no * page_size]
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:tns="{TNS}">'
            f"<soap:Body><tns:QueryPersonsResponse><tns:total>{len(rows)}</tns:total><tns:persons>"
            + "".join(_person_xml(p) for p in chunk)
            + "</tns:persons></tns:QueryPersonsResponse></soap:Body></soap:Envelope>"
        )
        return reply("200 OK", body.encode("utf-8"))

    return app


@pytest.fixture
def service() -> Iterator[Service]:
    svc = Service()
    server: WSGIServer = make_server("127.0.0.1", 0, make_app(svc), handler_class=Quiet)
    _serve(server)
    svc.url = f"http://127.0.0.1:{server.server_port}/services/PopulationService"
    try:
        yield svc
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    with Canary().running() as running:
        yield running


def source(svc: Service, **kw: Any) -> SoapSource:
    defaults: dict[str, Any] = dict(
        wsdl_path=str(WSDL), endpoint=svc.url, operation="QueryPersons", records_path="persons.person",
        page_size=3, read_timeout=5.0, retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02),
    )
    defaults.update(kw)
    return SoapSource(**defaults)


def seed(svc: Service, n: int) -> None:
    for i in range(n):
        svc.add(f"G{i:04d}", f"2024-05-01T09:{i // 2:02d}:00")


# --------------------------------------------------------------------------------------------
# Paging, records, credentials
# --------------------------------------------------------------------------------------------


def test_pages_of_plain_dict_records(service: Service) -> None:
    seed(service, 7)
    pages = list(fetch_soap_pages(source(service)))
    records = [r for p in pages for r in p.records]
    assert [r["id"] for r in records] == [f"G{i:04d}" for i in range(7)]
    first = records[0]
    assert first["name"] == "测试G0000" and first["address"] == "某市某区 <1号>"
    assert first["birthDate"] == "1990-01-01" and first["updatedAt"] == "2024-05-01T09:00:00"
    assert type(first) is dict
    assert b"QueryPersonsResponse" in pages[0].raw_bytes and pages[0].content_type == "text/xml"
    assert pages[0].reference == "QueryPersons?pageNo=1&pageSize=3"
    assert pages[-1].is_last and len(pages) == 3


def test_endpoint_in_wsdl_is_ignored_for_the_configured_one(service: Service) -> None:
    seed(service, 1)
    # The WSDL says http://gaj.invalid/…; the request still reaches the configured endpoint.
    assert [r["id"] for p in fetch_soap_pages(source(service)) for r in p.records] == ["G0000"]


def test_username_token_plain_and_digest(service: Service) -> None:
    seed(service, 4)
    service.credentials = ("huiju", "pa55-word")
    for digest in (False, True):
        pages = list(fetch_soap_pages(source(service), SoapCredentials("huiju", "pa55-word", use_digest=digest)))
        assert sum(len(p.records) for p in pages) == 4


def test_wrong_password_is_a_business_fault(service: Service) -> None:
    seed(service, 2)
    service.credentials = ("huiju", "pa55-word")
    with pytest.raises(SoapBusinessFault, match="认证失败"):
        list(fetch_soap_pages(source(service), SoapCredentials("huiju", "guess"), sleep=lambda s: None))
    assert len(service.calls) == 1  # not retried
    assert "guess" not in repr(SoapCredentials("huiju", "guess"))


def test_bad_parameter_is_a_terminal_business_fault(service: Service) -> None:
    seed(service, 2)
    with pytest.raises(SoapBusinessFault) as err:
        list(fetch_soap_pages(source(service, page_size=500), sleep=lambda s: None))
    assert err.value.code == "soap:Client" and "pageSize=500" in err.value.message
    assert err.value.detail == "CLIENT-1"
    assert len(service.calls) == 1


def test_server_fault_is_retried(service: Service) -> None:
    seed(service, 5)
    service.server_faults = 1
    waits: list[float] = []
    records = [r for p in fetch_soap_pages(source(service), sleep=waits.append) for r in p.records]
    assert [r["id"] for r in records] == [f"G{i:04d}" for i in range(5)]
    assert len(waits) == 1


def test_persistent_server_fault_gives_up_after_bounded_attempts(service: Service) -> None:
    seed(service, 5)
    service.server_faults = 99
    with pytest.raises(SoapError, match="gave up after 3 attempts"):
        list(fetch_soap_pages(source(service), sleep=lambda s: None))
    assert len(service.calls) == 3


def test_connection_refused_is_retried_then_reported() -> None:
    svc = Service(url="http://127.0.0.1:9/services/PopulationService")
    waits: list[float] = []
    with pytest.raises(SoapError, match="gave up after 3 attempts"):
        list(fetch_soap_pages(source(svc), sleep=waits.append))
    assert len(waits) == 2


def test_incremental_same_timestamp_between_runs(service: Service) -> None:
    seed(service, 6)  # two rows per timestamp
    incr = Incremental(since_param="updatedSince", updated_at_field="updatedAt", key_fields=("id",))
    pages = list(fetch_soap_pages(source(service, incremental=incr)))
    run1 = [r["id"] for p in pages for r in p.records]
    assert sorted(run1) == [f"G{i:04d}" for i in range(6)] and len(run1) == len(set(run1))
    cursor = pages[-1].next_cursor
    assert cursor["watermark"] == "2024-05-01T09:02:00"
    service.add("G0000X", "2024-05-01T09:02:00")  # new row at the watermark, key sorts first
    pages2 = list(fetch_soap_pages(source(service, incremental=incr), start_cursor=cursor))
    assert [r["id"] for p in pages2 for r in p.records] == ["G0000X"]
    assert service.calls[-1]["updatedSince"] == "2024-05-01T09:02:00"


# --------------------------------------------------------------------------------------------
# Hostile XML and SSRF
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_hostile_responses_are_refused_unparsed(canary: Canary, kind: str) -> None:
    """The shared SOAP service answers with a hostile document; nothing of it is expanded or fetched."""
    service = SoapService(records=[], namespace=TNS, operation="QueryPersons", records_path="persons.person",
                          path="/services/PopulationService", hostile=hostile_xml(kind, canary.url))
    # How fast it is refused (the 100 ms) is measured by `python -m bench soap_hostile`.
    with service.running(), pytest.raises(UnsafeXml, match="DTD"):
        list(fetch_soap_pages(SoapSource(
            wsdl_path=str(WSDL), endpoint=service.url, operation="QueryPersons", records_path="persons.person",
            page_size=3, retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)),
            sleep=lambda s: None))
    assert len(service.calls) == 1  # hostile is terminal, not retried
    assert canary.hits == []


def test_wsdl_importing_from_a_canary_fails_clearly_without_any_request(tmp_path: Path, canary: Canary) -> None:
    wsdl = tmp_path / "hostile.wsdl"
    wsdl.write_text((FIXTURES / "canary_import.wsdl.tmpl").read_text().replace("{CANARY}", canary.url))
    src = SoapSource(wsdl_path=str(wsdl), endpoint="http://127.0.0.1:9/x", operation="Ping", records_path="")
    with pytest.raises(SoapConfigError, match=r"remote|refused"):
        make_client(src)
    assert canary.hits == []


def test_wsdl_importing_a_file_outside_its_folder_is_refused(tmp_path: Path) -> None:
    # zeep's forbid_external only covers http(s); LockedTransport also fences local paths.
    (tmp_path / "secret.xsd").write_text('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>')
    wsdl_dir = tmp_path / "wsdl"
    wsdl_dir.mkdir()
    template = (FIXTURES / "canary_import.wsdl.tmpl").read_text()
    hostile = "\n".join(line for line in template.splitlines() if "<wsdl:import" not in line)
    (wsdl_dir / "h.wsdl").write_text(hostile.replace("{CANARY}/types.xsd", "../secret.xsd"))
    src = SoapSource(wsdl_path=str(wsdl_dir / "h.wsdl"), endpoint="http://127.0.0.1:9/x", operation="Ping",
                     records_path="")
    with pytest.raises(SoapConfigError, match="outside the WSDL folder"):
        make_client(src)


def test_locked_transport_refuses_remote_loads_gets_and_foreign_posts(tmp_path: Path, canary: Canary) -> None:
    transport = LockedTransport(FIXTURES, "http://127.0.0.1:9/only-here")
    with pytest.raises(SoapConfigError, match="vendored"):
        transport.load(f"{canary.url}/types.xsd")
    with pytest.raises(SoapConfigError, match="outside"):
        transport.load(str(tmp_path / "elsewhere.xsd"))
    with pytest.raises(SoapConfigError, match="GET"):
        transport.get(f"{canary.url}/x", {}, {})
    with pytest.raises(SoapConfigError, match="only allowed endpoint"):
        transport.post(f"{canary.url}/steal", b"<x/>", {})
    assert transport.load(str(WSDL)).startswith(b"<?xml")
    assert canary.hits == []


def test_missing_wsdl_and_unknown_operation_are_config_errors(service: Service) -> None:
    with pytest.raises(SoapConfigError, match="not found"):
        make_client(source(service, wsdl_path="/nonexistent/x.wsdl"))
    with pytest.raises(SoapConfigError, match="no operation"):
        make_client(source(service, operation="DropTables"))
