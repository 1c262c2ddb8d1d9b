"""REST connector against a real HTTP server on loopback: the demo's gateway (:mod:`huiju_demo.webservice`).

The gateway plays a department: paged JSON in page, offset and cursor modes, an inclusive
``updated_since`` filter ordered by (updated_at, id), injectable faults per request (500, 429
with Retry-After, 400, slow, commit-then-timeout), HMAC signature checking, bearer tokens and
an OAuth2 token endpoint. Waits are injected (recorded, not slept) except where a real client
timeout is the point of the test.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from huiju_connectors.http_auth import AuthError, BearerAuth, HmacAuth, OAuth2ClientCredentials
from huiju_connectors.rest import (
    Incremental,
    Page,
    Pagination,
    RestError,
    RestSource,
    RetryPolicy,
    SchemaDrift,
    TokenBucket,
    check_drift,
    page_records,
    parse_retry_after,
)
from huiju_connectors.rest import fetch_pages as connector_fetch_pages
from huiju_demo.rest_gateway import RestGateway

from tests.support.processes import kill_when

pytestmark = pytest.mark.timeout(60)

APP_KEY = "gaj-app-01"
APP_SECRET = "s3cr3t-app-secret"
CLIENT_ID = "huiju"
CLIENT_SECRET = "oauth-client-secret"


# --------------------------------------------------------------------------------------------
# The department gateway (the demo's, shared with the channel tests and the benchmark)
# --------------------------------------------------------------------------------------------


#: How the tests' ``fetch_pages`` asks for records (set for each test by :func:`records_mode`).
MODE = {"records": "whole"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test twice (see :func:`records_mode`), but those that compare both modes themselves."""
    if not getattr(metafunc.function, "compares_modes", False):
        metafunc.parametrize("records_mode", ["whole", "in_body"], indirect=True)


def compares_modes(test: Any) -> Any:
    """Mark a test that runs the connector in both records modes itself."""
    test.compares_modes = True
    return test


@pytest.fixture(autouse=True)
def records_mode(request: pytest.FixtureRequest) -> Iterator[str]:
    """Records decoded by the connector (``whole``), or left in the body, as the platform asks (``in_body``).

    In the second mode :func:`fetch_pages` yields the pages with their records decoded from the
    body afterwards (:func:`page_records`), so each test checks that both modes give the same
    records, cursors and errors.
    """
    MODE["records"] = getattr(request, "param", "whole")
    yield MODE["records"]
    MODE["records"] = "whole"


def fetch_pages(source: RestSource, *args: Any, **kwargs: Any) -> Iterator[Page]:
    """The connector's ``fetch_pages`` in the test's records mode (see :func:`records_mode`)."""
    if MODE["records"] == "whole":
        yield from connector_fetch_pages(source, *args, **kwargs)
        return
    for page in connector_fetch_pages(source, *args, whole_records=False, **kwargs):
        yield replace(page, records=page_records(page, source.records_path), in_body=False, kept=None)


def make_gateway(**kw: Any) -> RestGateway:
    """A gateway serving persons ``{"id", "name", "updated_at"}``, by default paged at /api/persons."""
    defaults: dict[str, Any] = dict(records=[], path="/api/persons", records_path="data.list",
                                    since_param="updated_since", updated_field="updated_at", key_field="id")
    defaults.update(kw)
    return RestGateway(**defaults)


@pytest.fixture
def api() -> Iterator[RestGateway]:
    with make_gateway().running() as gateway:
        yield gateway


def add(api: RestGateway, rid: str, updated_at: str) -> None:
    api.extend([{"id": rid, "name": f"人员{rid}", "updated_at": updated_at}])


def use_hmac(api: RestGateway) -> None:
    api.auth, api.app_key, api.secret = "hmac", APP_KEY, APP_SECRET


def use_oauth2(api: RestGateway) -> None:
    api.auth, api.app_key, api.secret = "oauth2", CLIENT_ID, CLIENT_SECRET


def persons_source(api: RestGateway, **kw: Any) -> RestSource:
    defaults: dict[str, Any] = dict(
        base_url=api.url, path="/api/persons", records_path="data.list", page_size=3, ok_path="code",
        retry=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05), read_timeout=5.0,
    )
    defaults.update(kw)
    return RestSource(**defaults)


INCR = Incremental(since_param="updated_since", updated_at_field="updated_at", key_fields=("id",))


def collect(pages: Iterator[Page]) -> tuple[list[dict[str, Any]], list[Page]]:
    got = list(pages)
    return [r for p in got for r in p.records], got


def seed(api: RestGateway, n: int = 10) -> None:
    for i in range(n):
        add(api, f"P{i:03d}", f"2024-05-01T08:{i:02d}:00")


def no_sleep(waits: list[float]) -> Any:
    return waits.append


# --------------------------------------------------------------------------------------------
# Pagination modes
# --------------------------------------------------------------------------------------------


def test_page_mode_reads_everything_once_with_stable_references(api: RestGateway) -> None:
    seed(api, 10)
    records, pages = collect(fetch_pages(persons_source(api)))
    assert [r["id"] for r in records] == [f"P{i:03d}" for i in range(10)]
    assert records[0] == api.current[0]  # kept whole
    assert pages[-1].is_last and not pages[0].is_last
    assert pages[0].reference == "/api/persons?page=1&size=3"
    assert json.loads(pages[0].raw_bytes)["data"]["list"] == records[:3]  # exactly as received
    json.dumps([p.next_cursor for p in pages])  # cursors are plain JSON


def test_offset_mode() -> None:
    offset = Pagination(kind="offset", size_param="limit")
    with make_gateway(path="/api/offset", records_path="", pagination=offset).running() as api:
        seed(api, 7)
        src = persons_source(api, path="/api/offset", records_path="", ok_path=None,
                             pagination=Pagination(kind="offset", size_param="limit"))
        records, pages = collect(fetch_pages(src))
    assert [r["id"] for r in records] == [f"P{i:03d}" for i in range(7)]
    assert [p.reference for p in pages] == [
        "/api/offset?limit=3&offset=0", "/api/offset?limit=3&offset=3", "/api/offset?limit=3&offset=6"]


def cursor_gateway() -> RestGateway:
    return make_gateway(path="/api/cursor", records_path="items",
                        pagination=Pagination(kind="cursor", next_cursor_path="paging.next"))


def test_cursor_mode_follows_the_server_token() -> None:
    with cursor_gateway().running() as api:
        seed(api, 8)
        src = persons_source(api, path="/api/cursor", records_path="items", ok_path=None,
                             pagination=Pagination(kind="cursor", next_cursor_path="paging.next"))
        records, pages = collect(fetch_pages(src))
        assert [r["id"] for r in records] == [f"P{i:03d}" for i in range(8)]
        assert len(pages) == 3 and pages[-1].is_last
        # Resuming from the middle uses the stored server token.
        rest, _ = collect(fetch_pages(src, start_cursor=pages[0].next_cursor))
    assert [r["id"] for r in rest] == [f"P{i:03d}" for i in range(3, 8)]


@compares_modes
@pytest.mark.parametrize("mode", ["page", "offset", "cursor"])
def test_records_left_in_the_body_are_the_records_decoded_whole(mode: str) -> None:
    paths = {"page": ("data.list", None), "offset": ("", None), "cursor": ("items", "paging.next")}
    records_path, token_path = paths[mode]
    pagination = Pagination(kind=mode, **({"next_cursor_path": token_path} if token_path else {}))
    gateway = make_gateway(path="/api/p", records_path=records_path, pagination=pagination)
    with gateway.running() as api:
        _incremental_dataset(api)
        api.extend([{"id": "N1", "name": None, "updated_at": "2024-05-01T11:00:00", "extra": {"a": [1, "x"]}}])
        for incremental in (None, INCR):
            src = persons_source(api, path="/api/p", records_path=records_path, pagination=pagination,
                                 ok_path="code" if mode == "page" else None, incremental=incremental)
            whole = list(connector_fetch_pages(src))
            in_body = list(connector_fetch_pages(src, whole_records=False))
            assert all(page.in_body and page.records == [] for page in in_body)
            assert [page_records(page, records_path) for page in in_body] == [page.records for page in whole]
            assert [(p.reference, p.next_cursor, p.fetched_count, p.raw_bytes) for p in in_body] == [
                (p.reference, p.next_cursor, p.fetched_count, p.raw_bytes) for p in whole]
            if incremental is not None and mode != "cursor":  # a new window re-reads records landed before
                assert any(page.kept is not None for page in in_body)


@compares_modes
def test_a_body_the_check_refuses_is_decoded_whole(api: RestGateway) -> None:
    seed(api, 4)
    api.extend([{"id": "P9", "name": "x", "updated_at": "2024-05-02T00:00:00", "score": float("nan")}])
    src = persons_source(api)
    pages = list(connector_fetch_pages(src, whole_records=False))  # NaN: only json.loads reads it
    assert [page.in_body for page in pages] == [True, False]
    assert pages[1].records[-1]["id"] == "P9" and pages[1].records[-1]["score"] != pages[1].records[-1]["score"]


def test_resume_from_a_stored_cursor_continues_after_the_landed_page(api: RestGateway) -> None:
    seed(api, 10)
    src = persons_source(api)
    gen = fetch_pages(src)
    first = next(gen)
    gen.close()
    rest, _ = collect(fetch_pages(src, start_cursor=first.next_cursor))
    assert [r["id"] for r in first.records + rest] == [f"P{i:03d}" for i in range(10)]


# --------------------------------------------------------------------------------------------
# Retries and terminal errors
# --------------------------------------------------------------------------------------------


def test_500_then_ok_is_retried(api: RestGateway) -> None:
    seed(api, 5)
    api.faults.pending.append(({"page": "2"}, "500"))
    waits: list[float] = []
    records, _ = collect(fetch_pages(persons_source(api), sleep=waits.append))
    assert len(records) == 5 and len({r["id"] for r in records}) == 5
    assert len(waits) == 1 and 0 <= waits[0] <= 0.01  # full jitter within the first ceiling


def test_429_honours_retry_after(api: RestGateway) -> None:
    seed(api, 4)
    api.faults.pending.append(({"page": "1"}, "429"))
    waits: list[float] = []
    records, _ = collect(fetch_pages(persons_source(api), sleep=waits.append))
    assert len(records) == 4
    assert waits == [1.0]  # Retry-After: 1, recorded instead of slept


def test_retry_after_http_date_and_cap() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:40 GMT", now=lambda: now) == pytest.approx(20.0)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("soon") is None


def test_slow_response_times_out_then_succeeds(api: RestGateway) -> None:
    seed(api, 4)
    api.faults.pending.append(({"page": "2"}, "slow"))
    waits: list[float] = []
    records, _ = collect(fetch_pages(persons_source(api, read_timeout=0.5), sleep=waits.append))
    assert [r["id"] for r in records] == [f"P{i:03d}" for i in range(4)]
    assert len(waits) == 1


def test_commit_then_timeout_page_is_not_duplicated(api: RestGateway) -> None:
    seed(api, 9)
    api.faults.pending.append(({"page": "2"}, "commit-then-timeout"))
    records, _ = collect(fetch_pages(persons_source(api, read_timeout=0.5), sleep=lambda s: None))
    ids = [r["id"] for r in records]
    assert ids == [f"P{i:03d}" for i in range(9)]  # exact, no duplicates
    page2 = [p for p in api.served if p.get("page") == "2"]
    assert len(page2) >= 2  # the server did deliver page 2 twice


def test_other_4xx_is_terminal_with_a_clear_message(api: RestGateway) -> None:
    seed(api, 4)
    api.faults.pending.append(({"page": "1"}, "400"))
    src = persons_source(api, params={"access_token": "do-not-leak"})
    with pytest.raises(RestError) as err:
        collect(fetch_pages(src, sleep=lambda s: None))
    msg = str(err.value)
    assert err.value.status == 400 and "400" in msg and "/api/persons" in msg
    # The body is described, never quoted: a gateway's error page can echo the citizens' data it was sent.
    assert "参数错误" not in msg and "body not shown (application/json" in msg
    assert "do-not-leak" not in msg and "access_token=" in msg
    assert len(api.requests) == 1  # not retried


def test_attempts_are_bounded(api: RestGateway) -> None:
    seed(api, 2)
    api.faults.pending.extend([({"page": "1"}, "500")] * 10)
    waits: list[float] = []
    with pytest.raises(RestError, match="gave up after 4 attempts"):
        collect(fetch_pages(persons_source(api), sleep=waits.append))
    assert len(api.requests) == 4 and len(waits) == 3


def test_business_failure_inside_http_200_is_terminal(api: RestGateway) -> None:
    seed(api, 2)
    src = persons_source(api, ok_values=(200,))  # the gateway answers code 0, we expect 200
    with pytest.raises(RestError, match="reported failure code=0"):
        collect(fetch_pages(src))


def test_connection_refused_is_retried_then_reported_quickly() -> None:
    src = RestSource(base_url="http://127.0.0.1:9", path="/x", retry=RetryPolicy(attempts=2, base_delay=0))
    with pytest.raises(RestError, match="gave up after 2 attempts"):
        collect(fetch_pages(src, sleep=lambda s: None))


def test_tls_is_never_disabled() -> None:
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="verify"):
        RestSource(base_url="https://x", path="/", ssl_context=ctx)
    assert RestSource(base_url="https://x", path="/").verify() is True


def _make_tls_files(tmp: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 (openssl CLI, EC keys for speed)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *args: subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Huiju Test CA")
    run("req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    (tmp / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    return tmp / "ca.pem", tmp / "srv.pem", tmp / "srv.key"


def test_https_with_department_ca_bundle_and_untrusted_certificate(tmp_path: Path) -> None:
    import ssl

    ca, cert, key = _make_tls_files(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with make_gateway().running(ssl_context=ctx) as api:
        seed(api, 4)
        records, _ = collect(fetch_pages(persons_source(api, ca_bundle=str(ca))))
        assert len(records) == 4
        with pytest.raises(RestError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed") as err:
            collect(fetch_pages(persons_source(api), sleep=lambda s: None))
        assert "gave up" not in str(err.value) and err.value.retryable is False  # a bad certificate is terminal


def test_token_bucket_rate_limits_with_injected_clock() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    bucket = TokenBucket(rate=2.0, burst=2, clock=lambda: now[0], sleep=sleep)
    for _ in range(6):
        bucket.acquire()
    assert waits == pytest.approx([0.5, 0.5, 0.5, 0.5])  # burst of 2, then one every 0.5 s


def test_rate_limit_applies_to_requests(api: RestGateway) -> None:
    seed(api, 9)
    waits: list[float] = []
    records, _ = collect(fetch_pages(persons_source(api, rate_limit=1000.0), sleep=waits.append))
    assert len(records) == 9


# --------------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------------


def test_hmac_signature_is_accepted_by_the_gateway(api: RestGateway) -> None:
    seed(api, 5)
    use_hmac(api)
    src = persons_source(api, params={"region": "江北区 1/2"})  # non-ASCII and reserved characters
    records, _ = collect(fetch_pages(src, HmacAuth(APP_KEY, APP_SECRET)))
    assert len(records) == 5


def test_wrong_hmac_secret_is_a_terminal_401(api: RestGateway) -> None:
    seed(api, 5)
    use_hmac(api)
    with pytest.raises(RestError) as err:
        collect(fetch_pages(persons_source(api), HmacAuth(APP_KEY, "wrong-secret"), sleep=lambda s: None))
    assert err.value.status == 401 and err.value.gateway_message == "签名校验失败"
    assert "wrong-secret" not in str(err.value)
    assert len(api.requests) == 1


def test_oauth2_token_cached_refreshed_on_expiry_and_on_401(api: RestGateway) -> None:
    seed(api, 9)
    use_oauth2(api)
    now = [0.0]
    auth = OAuth2ClientCredentials(f"{api.url}/oauth/token", CLIENT_ID, CLIENT_SECRET, margin_seconds=20,
                                   clock=lambda: now[0])
    records, _ = collect(fetch_pages(persons_source(api), auth))
    assert len(records) == 9 and api.token_requests == 1  # one token for all pages

    now[0] = 101.0  # expires_in 120 minus a 20 s margin: due for renewal
    collect(fetch_pages(persons_source(api), auth))
    assert api.token_requests == 2

    api.tokens.clear()  # the gateway revokes everything: 401, one refresh, success
    records, _ = collect(fetch_pages(persons_source(api), auth))
    assert len(records) == 9 and api.token_requests == 3


def test_oauth2_bad_client_secret_fails_clearly(api: RestGateway) -> None:
    use_oauth2(api)
    auth = OAuth2ClientCredentials(f"{api.url}/oauth/token", CLIENT_ID, "nope")
    with pytest.raises(AuthError, match="HTTP 401"):
        collect(fetch_pages(persons_source(api), auth))


def test_bearer_token_rejected_is_terminal(api: RestGateway) -> None:
    use_oauth2(api)
    with pytest.raises(RestError) as err:
        collect(fetch_pages(persons_source(api), BearerAuth("stale"), sleep=lambda s: None))
    assert err.value.status == 401 and "stale" not in str(err.value)


# --------------------------------------------------------------------------------------------
# Incremental: equal timestamps across pages and between runs
# --------------------------------------------------------------------------------------------


def _incremental_dataset(api: RestGateway) -> None:
    add(api, "A1", "2024-05-01T09:00:00")
    add(api, "A2", "2024-05-01T09:00:00")
    for i in range(7):  # more rows sharing one timestamp than fit on a page
        add(api, f"B{i}", "2024-05-01T10:00:00")
    add(api, "C1", "2024-05-01T10:00:01")
    add(api, "C2", "2024-05-01T11:00:00")
    add(api, "C3", "2024-05-01T11:00:00")


def test_incremental_equal_timestamps_across_pages_and_runs(api: RestGateway) -> None:
    _incremental_dataset(api)
    src = persons_source(api, incremental=INCR)
    run1, pages = collect(fetch_pages(src))
    ids1 = [r["id"] for r in run1]
    assert sorted(ids1) == sorted(r["id"] for r in api.current) and len(ids1) == len(set(ids1))
    cursor = pages[-1].next_cursor
    assert cursor["watermark"] == "2024-05-01T11:00:00" and sorted(cursor["seen_keys"]) == [["C2"], ["C3"]]

    # Between runs the department inserts rows at the very same timestamp (keys before and after
    # the last one), a newer row, and updates an old row.
    add(api, "C0", "2024-05-01T11:00:00")
    add(api, "C9", "2024-05-01T11:00:00")
    add(api, "D1", "2024-05-01T12:00:00")
    api.update("A1", updated_at="2024-05-01T12:30:00")  # A1 updated: a new version
    first_request = len(api.requests)
    run2, pages2 = collect(fetch_pages(src, start_cursor=cursor))
    assert sorted(r["id"] for r in run2) == ["A1", "C0", "C9", "D1"]
    assert api.requests[first_request]["updated_since"] == "2024-05-01T11:00:00"

    # Nothing new: a third run lands nothing and keeps the watermark.
    run3, pages3 = collect(fetch_pages(src, start_cursor=pages2[-1].next_cursor))
    assert run3 == [] and pages3[-1].next_cursor["watermark"] == "2024-05-01T12:30:00"


def test_incremental_with_cursor_pagination() -> None:
    with cursor_gateway().running() as api:
        _incremental_dataset(api)
        src = persons_source(api, path="/api/cursor", records_path="items", ok_path=None, incremental=INCR,
                             pagination=Pagination(kind="cursor", next_cursor_path="paging.next"))
        run1, pages = collect(fetch_pages(src))
        assert len(run1) == len(api.current) == len({r["id"] for r in run1})
        add(api, "C4", "2024-05-01T11:00:00")
        run2, _ = collect(fetch_pages(src, start_cursor=pages[-1].next_cursor))
    assert [r["id"] for r in run2] == ["C4"]


def test_out_of_order_source_is_refused(api: RestGateway) -> None:
    add(api, "X1", "2024-05-02T00:00:00")
    cursor = {"v": 1, "position": None, "watermark": "2024-05-03T00:00:00", "seen_keys": []}
    # A gateway that ignores updated_since returns an older row: the guarantee cannot hold.
    src = persons_source(api, incremental=Incremental("ignored_param", "updated_at", ("id",)))
    with pytest.raises(RestError, match="older than the watermark"):
        collect(fetch_pages(src, start_cursor=cursor))


# --------------------------------------------------------------------------------------------
# Schema drift
# --------------------------------------------------------------------------------------------


def test_check_drift_warns_or_holds_and_keeps_records() -> None:
    records = [{"id": 1, "name": "a", "phone": "138"}, {"id": 2, "name": "b"}]
    before = json.dumps(records)
    warnings = check_drift(records, ["id", "name", "address"], "warn")
    assert any("phone" in w for w in warnings) and any("address" in w for w in warnings)
    assert json.dumps(records) == before  # nothing dropped
    with pytest.raises(SchemaDrift) as err:
        check_drift(records, ["id", "name", "address"], "hold")
    assert err.value.added == ["phone"] and err.value.removed == ["address"]
    assert check_drift(records, ["id", "name", "phone"], "hold") == []


# --------------------------------------------------------------------------------------------
# Kill mid-run and rerun (SQLite stands in for the warehouse)
# --------------------------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import json, os, signal, sqlite3, sys
    from huiju_connectors.rest import Incremental, RestSource, RetryPolicy, fetch_pages

    db, base_url = sys.argv[1], sys.argv[2]
    crash_before_commit_at = int(os.environ.get("CRASH_BEFORE_COMMIT_AT", "0"))
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("create table if not exists landed (id text, updated_at text, body text)")
    conn.execute("create table if not exists cursor (k integer primary key, value text)")
    row = conn.execute("select value from cursor where k = 1").fetchone()
    source = RestSource(
        base_url=base_url, path="/api/persons", records_path="data.list", page_size=4,
        incremental=Incremental("updated_since", "updated_at", ("id",)),
        retry=RetryPolicy(attempts=3, base_delay=0.01),
    )
    for n, page in enumerate(fetch_pages(source, start_cursor=json.loads(row[0]) if row else None), 1):
        conn.execute("begin immediate")
        conn.executemany("insert into landed values (?, ?, ?)",
                         [(r["id"], r["updated_at"], json.dumps(r)) for r in page.records])
        if n == crash_before_commit_at:
            os.kill(os.getpid(), signal.SIGKILL)  # dies with the page written but not committed
        conn.execute("insert into cursor values (1, ?) on conflict (k) do update set value = excluded.value",
                     (json.dumps(page.next_cursor),))
        conn.execute("commit")
        print("landed", n, flush=True)
    """
)


def _run_worker(tmp_path: Path, api: RestGateway, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "wh.sqlite"), api.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
    )


def _landed(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "wh.sqlite") as conn:
        return [r[0] for r in conn.execute("select id from landed")]


def _kill_dataset(api: RestGateway) -> None:
    for i in range(30):  # 30 rows, often several per timestamp, so page boundaries split ties
        add(api, f"K{i:02d}", f"2024-06-01T00:00:{i // 3:02d}")


def test_sigkill_mid_run_then_rerun_gives_the_exact_record_set(api: RestGateway, tmp_path: Path) -> None:
    _kill_dataset(api)
    api.faults.block_at = 4  # the 4th request hangs: three pages are landed, the fourth never is
    proc = _run_worker(tmp_path, api)
    kill_when(proc, lambda: len(api.requests) >= 4, within=20)
    assert proc.returncode == -signal.SIGKILL
    assert 0 < len(_landed(tmp_path)) < 30
    api.faults.unblock()

    add(api, "K99", "2024-06-01T00:00:09")  # arrives between runs at the newest timestamp
    proc = _run_worker(tmp_path, api)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    landed = _landed(tmp_path)
    assert sorted(landed) == sorted(r["id"] for r in api.current)
    assert len(landed) == len(set(landed))


def test_crash_between_insert_and_commit_rolls_back_records_and_cursor_together(
    api: RestGateway, tmp_path: Path,
) -> None:
    _kill_dataset(api)
    src = persons_source(api, page_size=4, incremental=INCR)
    reference_pages = list(fetch_pages(src))
    proc = _run_worker(tmp_path, api, {"CRASH_BEFORE_COMMIT_AT": "3"})
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # Pages 1-2 only: page 3's rows were written but rolled back with its cursor.
    assert len(_landed(tmp_path)) == len(reference_pages[0].records) + len(reference_pages[1].records)
    proc = _run_worker(tmp_path, api)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    landed = _landed(tmp_path)
    assert sorted(landed) == sorted(r["id"] for r in api.current) and len(landed) == len(set(landed))


def test_httpx_auth_classes_are_httpx_auth() -> None:
    assert isinstance(HmacAuth("k", "s"), httpx.Auth) and "s3" not in repr(HmacAuth("k", "s3cr3t"))
