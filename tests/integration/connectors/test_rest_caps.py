"""The REST connector's caps against hostile gateways on loopback (tests/support/hostile_http.py):
pages per run, a page parameter ignored, a next-page token repeated, bytes and records per page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from huiju_connectors.rest import Caps, Pagination, RestError, RestSource, RetryPolicy, fetch_pages

from tests.support.hostile_http import ScriptedServer, endless

# 11010519491231002X is GB 11643-1999's own example ID number (a published test vector, no citizen's).

pytestmark = pytest.mark.timeout(30)


def _json(body: Any) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _source(url: str, **kw: Any) -> RestSource:
    settings: dict[str, Any] = dict(base_url=url, path="/api", records_path="data", page_size=2, name="hostile_api",
                                    retry=RetryPolicy(attempts=1), read_timeout=5.0)
    return RestSource(**(settings | kw))


def test_a_gateway_ignoring_the_page_parameter_stops_at_the_second_page() -> None:
    server = ScriptedServer(lambda *_: _json({"data": [{"id": 1}, {"id": 2}]}))
    with server.running(), pytest.raises(RestError, match=r"hostile_api: .*page 2 repeats page 1"):
        list(fetch_pages(_source(server.url)))
    assert len(server.requests) == 2


def test_a_repeated_next_token_stops_the_run() -> None:
    # Fresh records on every page, but the tokens go t1, t2, t1: following them would never end.
    server = ScriptedServer(lambda *_: _json({"data": [{"id": len(server.requests)}],
                                              "next": "t1" if len(server.requests) % 2 else "t2"}))
    cursor = Pagination(kind="cursor", next_cursor_path="next")
    with server.running(), pytest.raises(RestError, match="next-page token it had already sent"):
        list(fetch_pages(_source(server.url, pagination=cursor)))
    assert len(server.requests) <= 3


def test_pages_per_run_are_capped() -> None:
    server = ScriptedServer(lambda m, p, q, b: _json({"data": [{"id": q["page"] + "a"}, {"id": q["page"] + "b"}]}))
    with server.running(), pytest.raises(RestError, match=r"hostile_api: more than max_pages \(3\)"):
        list(fetch_pages(_source(server.url, caps=Caps(max_pages=3))))
    assert len(server.requests) == 3


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_max_page_bytes_is_refused_without_reading_it_whole(chunked: bool) -> None:
    def answer(*_: Any) -> tuple[int, dict[str, str], Any]:
        return (200, {"Content-Type": "application/json"},
                endless() if chunked else b'{"data": [' + b" " * 300_000 + b"]}")

    server = ScriptedServer(answer)
    with server.running(), pytest.raises(RestError, match=r"max_page_bytes \(100000"):
        list(fetch_pages(_source(server.url, caps=Caps(max_page_bytes=100_000))))


def test_records_per_page_are_capped() -> None:
    server = ScriptedServer(lambda *_: _json({"data": [{"id": i} for i in range(50)]}))
    with server.running(), pytest.raises(RestError, match=r"50 records in one page, more than max_page_records \(10\)"):
        list(fetch_pages(_source(server.url, caps=Caps(max_page_records=10))))


def test_an_error_body_is_never_quoted() -> None:
    secret = "张三 11010519491231002X 13912345678"
    server = ScriptedServer(lambda *_: (400, {"Content-Type": "text/html"}, f"<p>bad: {secret}</p>".encode()))
    with server.running(), pytest.raises(RestError) as raised:
        list(fetch_pages(_source(server.url)))
    assert "11010519491231002X" not in str(raised.value) and "张三" not in str(raised.value)
    assert "body not shown (text/html" in str(raised.value)
