"""SOAP connector against a real WSGI service on loopback serving the vendored WSDL's operation.

The service (wsgiref in a thread) parses each request envelope with defusedxml, checks the
WS-Security UsernameToken, and answers ``QueryPersons``; faults and hostile responses are
injected per test. A second server, the *canary*, counts every request it gets: the platform
must never reach it. Both are the demo's (:mod:`huiju_demo.webservice`), shared with the
channel tests and the benchmarks.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from huiju_connectors.rest import Caps, Incremental, RetryPolicy
from huiju_connectors.safe_xml import UnsafeXml
from huiju_connectors.soap import (
    DateWindow,
    LockedTransport,
    SoapBusinessFault,
    SoapConfigError,
    SoapCredentials,
    SoapError,
    SoapSource,
    fetch_soap_pages,
    make_client,
)
from huiju_demo.bulk import valid_id_number
from huiju_demo.soap_service import SoapService

from tests.support.hostile_http import ScriptedServer
from tests.support.hostile_xml import HOSTILE_KINDS, Canary, hostile_xml

pytestmark = pytest.mark.timeout(60)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "soap"
WSDL = FIXTURES / "gaj_population.wsdl"
TNS = "http://gaj.example.gov.cn/population/v1"


# --------------------------------------------------------------------------------------------
# Servers: the demo's SOAP service (shared with the channel tests and the benchmarks)
# --------------------------------------------------------------------------------------------


def make_service() -> SoapService:
    """The 公安局 population service: ``QueryPersons`` paged by pageNo/pageSize, at most 100 a page."""
    return SoapService(records=[], namespace=TNS, operation="QueryPersons", records_path="persons.person",
                       path="/services/PopulationService", since_param="updatedSince", updated_field="updatedAt",
                       key_field="id", max_page_size=100)


@pytest.fixture
def service() -> Iterator[SoapService]:
    with make_service().running() as running:
        yield running


def add(svc: SoapService, pid: str, updated_at: str) -> None:
    # The ID number is generated from the key (a valid check digit, no typed-in number).
    id_number = valid_id_number(zlib.crc32(pid.encode()) % 100_000)
    svc.extend([{"id": pid, "name": f"测试{pid}", "idCardNo": id_number, "gender": "1",
                 "birthDate": "1990-01-01", "address": "某市某区 <1号>", "updatedAt": updated_at}])


def server_faults(svc: SoapService, n: int) -> None:
    """Answer the next ``n`` calls with a Server fault."""
    svc.faults.pending = [({}, "500")] * n


@pytest.fixture
def canary() -> Iterator[Canary]:
    with Canary().running() as running:
        yield running


def source(svc: SoapService, **kw: Any) -> SoapSource:
    defaults: dict[str, Any] = dict(
        wsdl_path=str(WSDL), endpoint=svc.url, operation="QueryPersons", records_path="persons.person",
        page_size=3, read_timeout=5.0, retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02),
    )
    defaults.update(kw)
    return SoapSource(**defaults)


def seed(svc: SoapService, n: int) -> None:
    for i in range(n):
        add(svc, f"G{i:04d}", f"2024-05-01T09:{i // 2:02d}:00")


# --------------------------------------------------------------------------------------------
# Paging, records, credentials
# --------------------------------------------------------------------------------------------


def test_pages_of_plain_dict_records(service: SoapService) -> None:
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


def test_endpoint_in_wsdl_is_ignored_for_the_configured_one(service: SoapService) -> None:
    seed(service, 1)
    # The WSDL says http://gaj.invalid/…; the request still reaches the configured endpoint.
    assert [r["id"] for p in fetch_soap_pages(source(service)) for r in p.records] == ["G0000"]


def test_username_token_plain_and_digest(service: SoapService) -> None:
    seed(service, 4)
    service.username, service.password = "huiju", "pa55-word"
    for digest in (False, True):
        pages = list(fetch_soap_pages(source(service), SoapCredentials("huiju", "pa55-word", use_digest=digest)))
        assert sum(len(p.records) for p in pages) == 4


def test_wrong_password_is_a_business_fault(service: SoapService) -> None:
    seed(service, 2)
    service.username, service.password = "huiju", "pa55-word"
    with pytest.raises(SoapBusinessFault, match="认证失败"):
        list(fetch_soap_pages(source(service), SoapCredentials("huiju", "guess"), sleep=lambda s: None))
    assert len(service.calls) == 1  # not retried
    assert "guess" not in repr(SoapCredentials("huiju", "guess"))


def test_bad_parameter_is_a_terminal_business_fault(service: SoapService) -> None:
    seed(service, 2)
    with pytest.raises(SoapBusinessFault) as err:
        list(fetch_soap_pages(source(service, page_size=500), sleep=lambda s: None))
    assert err.value.code == "soap:Client" and "pageSize=500" in err.value.message
    assert err.value.detail == "CLIENT-1"
    assert len(service.calls) == 1


def test_server_fault_is_retried(service: SoapService) -> None:
    seed(service, 5)
    server_faults(service, 1)
    waits: list[float] = []
    records = [r for p in fetch_soap_pages(source(service), sleep=waits.append) for r in p.records]
    assert [r["id"] for r in records] == [f"G{i:04d}" for i in range(5)]
    assert len(waits) == 1


def test_persistent_server_fault_gives_up_after_bounded_attempts(service: SoapService) -> None:
    seed(service, 5)
    server_faults(service, 99)
    with pytest.raises(SoapError, match="gave up after 3 attempts"):
        list(fetch_soap_pages(source(service), sleep=lambda s: None))
    assert len(service.calls) == 3


def test_connection_refused_is_retried_then_reported() -> None:
    svc = make_service()
    svc.url = "http://127.0.0.1:9/services/PopulationService"  # nothing listens there
    waits: list[float] = []
    with pytest.raises(SoapError, match="gave up after 3 attempts"):
        list(fetch_soap_pages(source(svc), sleep=waits.append))
    assert len(waits) == 2


def test_incremental_same_timestamp_between_runs(service: SoapService) -> None:
    seed(service, 6)  # two rows per timestamp
    incr = Incremental(since_param="updatedSince", updated_at_field="updatedAt", key_fields=("id",))
    pages = list(fetch_soap_pages(source(service, incremental=incr)))
    run1 = [r["id"] for p in pages for r in p.records]
    assert sorted(run1) == [f"G{i:04d}" for i in range(6)] and len(run1) == len(set(run1))
    cursor = pages[-1].next_cursor
    assert cursor["watermark"] == "2024-05-01T09:02:00"
    add(service, "G0000X", "2024-05-01T09:02:00")  # new row at the watermark, key sorts first
    pages2 = list(fetch_soap_pages(source(service, incremental=incr), start_cursor=cursor))
    assert [r["id"] for p in pages2 for r in p.records] == ["G0000X"]
    assert service.calls[-1]["updatedSince"] == "2024-05-01T09:02:00"


def test_date_windows_read_each_closed_window_once_and_resume_inside_one(service: SoapService) -> None:
    for day in (1, 2, 3):
        for n in range(4):  # four rows a day: two pages of three and one
            add(service, f"D{day}{n}", f"2024-05-0{day}T10:0{n}:00")
    service.window_field = "updatedAt"
    window = DateWindow(from_param="dateFrom", to_param="dateTo", start="2024-05-01")
    src = source(service, window=window)

    # The run of 3 May reads 1 and 2 May (closed); 3 May is still open. A crash after the first
    # page: the next run resumes inside the 1 May window.
    pages = fetch_soap_pages(src, today=date(2024, 5, 3))
    first = next(pages)
    pages.close()
    assert first.next_cursor["window"] == "2024-05-01" and first.next_cursor["position"] == {"page": 2}
    rest = list(fetch_soap_pages(src, start_cursor=first.next_cursor, today=date(2024, 5, 3)))
    ids = [r["id"] for p in [first, *rest] for r in p.records]
    assert ids == ["D10", "D11", "D12", "D13", "D20", "D21", "D22", "D23"]
    assert service.calls[1]["dateFrom"] == service.calls[1]["dateTo"] == "2024-05-01"
    assert rest[-1].is_last and rest[-1].next_cursor["window"] == "2024-05-03"

    # Nothing closed since: no call. The next day: only 3 May.
    calls = len(service.calls)
    assert list(fetch_soap_pages(src, start_cursor=rest[-1].next_cursor, today=date(2024, 5, 3))) == []
    assert len(service.calls) == calls
    later = list(fetch_soap_pages(src, start_cursor=rest[-1].next_cursor, today=date(2024, 5, 4)))
    assert [r["id"] for p in later for r in p.records] == ["D30", "D31", "D32", "D33"]
    assert "dateFrom=2024-05-03" in later[0].reference


def test_date_windows_and_updated_since_together_are_refused(service: SoapService) -> None:
    incr = Incremental(since_param="updatedSince", updated_at_field="updatedAt", key_fields=("id",))
    window = DateWindow(from_param="dateFrom", to_param="dateTo", start="2024-05-01")
    with pytest.raises(SoapConfigError, match="not both"):
        list(fetch_soap_pages(source(service, window=window, incremental=incr)))


# --------------------------------------------------------------------------------------------
# Hostile XML and SSRF
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_hostile_responses_are_refused_unparsed(canary: Canary, kind: str) -> None:
    """The shared SOAP service answers with a hostile document; nothing of it is expanded or fetched."""
    service = make_service()
    service.hostile = hostile_xml(kind, canary.url)
    # How fast it is refused (the 100 ms) is measured by `python -m bench soap_hostile`.
    with service.running(), pytest.raises(UnsafeXml, match="DTD"):
        list(fetch_soap_pages(SoapSource(
            wsdl_path=str(WSDL), endpoint=service.url, operation="QueryPersons", records_path="persons.person",
            page_size=3, retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)),
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


def test_missing_wsdl_and_unknown_operation_are_config_errors(service: SoapService) -> None:
    with pytest.raises(SoapConfigError, match="not found"):
        make_client(source(service, wsdl_path="/nonexistent/x.wsdl"))
    with pytest.raises(SoapConfigError, match="no operation"):
        make_client(source(service, operation="DropTables"))


# --------------------------------------------------------------------------------------------
# Redirects and caps
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirected_post_is_refused_and_the_token_never_resent(canary: Canary, status: int) -> None:
    redirecting = ScriptedServer(lambda *_: (status, {"Location": f"{canary.url}/steal"}, b""))
    with redirecting.running(), pytest.raises(SoapError, match=f"HTTP {status} \\(a redirect\\); refused"):
        list(fetch_soap_pages(source(redirecting), SoapCredentials("gaj-user", "gaj-password"), sleep=lambda s: None))
    assert len(redirecting.requests) == 1 and b"gaj-password" in redirecting.requests[0][3]
    assert canary.hits == []  # the UsernameToken went nowhere else


def test_a_soap_answer_over_max_page_bytes_is_refused(service: SoapService) -> None:
    seed(service, 40)
    with pytest.raises(SoapError, match=r"max_page_bytes \(2000"):
        list(fetch_soap_pages(source(service, page_size=30, caps=Caps(max_page_bytes=2000)), sleep=lambda s: None))
