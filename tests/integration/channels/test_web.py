"""The web channel end to end: the demo's 卫生健康委员会 site (a real HTTP server on loopback) → ledger → raw.

Through :func:`huiju.pipeline.collect` with the session's warehouse: exact record sets and row
numbers, pages archived as received, unchanged pages recognised by their table, robots.txt, a
polite rate, and hostile pages (huge, deeply nested, scripts, no table, merged-cell bombs,
redirects elsewhere, bad encodings) refused within the caps, the pages before them kept.
"""

from __future__ import annotations

import re

import psycopg
import pytest
from huiju_connectors.web import WebError, WebPagination, WebSource, fetch_pages
from huiju_demo.generate import generate_records
from huiju_demo.simulators.web import connection_for, site_for
from huiju_demo.web_site import ListSite

from huiju.archive import read_archived
from huiju.pipeline import collect
from huiju.registry import Registry, Source, load_registry
from huiju.validation import validate_load
from tests.support.webservice import DAY, connection_info, landed, loads, variant

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("webservice_platform")]

BASE = "wjw_penalty"
LIST = "/xxgk/xzcf/"


def _setup(rows: int, **updates: object) -> tuple[Registry, Source, list[dict], object]:
    registry, source = variant(load_registry(), BASE, rate_limit=None, **updates)
    records, submission = generate_records(registry, source, DAY, rows=rows)
    return registry, source, records, submission


def _run(registry: Registry, source: Source, site: ListSite) -> list:
    return collect(source.id, DAY, registry, connection_info(source.connection or "", connection_for(site)))


def test_a_run_lands_every_page_with_the_lists_numbering_and_archives_each_as_received(pg_url: str) -> None:
    registry, source, records, submission = _setup(45)
    site = site_for(source, records, page_size=10)
    with site.running():
        results = _run(registry, source, site)
    assert [r.outcome for r in results] == ["landed"] * 5
    assert [r.reference for r in results] == [f"{LIST}index.html", *(f"{LIST}index_{n}.html" for n in range(1, 5))]
    rows = landed(pg_url, source.id)
    # Records are numbered through the list (as its 序号 counts them), whichever page holds them.
    assert {r[0]: r[1] for r in rows} == {rec["行政处罚决定书文号"]: i for i, rec in enumerate(records, start=1)}
    assert site.requests[0][0] == "/robots.txt" and all("HuijuCrawler" in agent for _, agent in site.requests)
    with psycopg.connect(pg_url) as conn:
        archived = conn.execute("select reference, archive_path from ops.loads where source_id = %s",
                                (source.id,)).fetchall()
        for reference, archive_path in archived:
            assert read_archived(archive_path) == site.files[reference][1]  # the page as received (GB2312 bytes)
        quarantined: set[int] = set()
        for result in results:
            validate_load(conn, registry, result.load_id, run_gx=False)
            quarantined |= {r[0] for r in conn.execute("select row_no from quarantine.rows where load_id = %s",
                                                       (result.load_id,))}
        conn.commit()
    assert quarantined == {bad.row for bad in submission.bad_rows}


def test_unchanged_pages_are_recognised_by_their_table_and_a_changed_page_lands_again(pg_url: str) -> None:
    registry, source, records, _ = _setup(30)
    site = site_for(source, records, page_size=10)
    with site.running():
        first = _run(registry, source, site)
        # Every page now carries a visit counter (the bytes change) and page 2 a corrected record.
        for path, (kind, body) in list(site.files.items()):
            if path.endswith(".html"):
                site.files[path] = (kind, body.replace(b"</body>", b"<span>visits: 12345</span></body>"))
        path = f"{LIST}index_1.html"
        kind, body = site.files[path]
        old = records[12]["处罚内容"]
        site.files[path] = (kind, body.replace(old.encode("gb18030"), "更正后的处罚内容".encode("gb18030"), 1))
        second = _run(registry, source, site)
    assert [r.outcome for r in first] == ["landed"] * 3
    assert [r.outcome for r in second] == ["already_landed", "landed", "already_landed"]
    assert len(loads(pg_url, source.id)) == 4


def test_robots_txt_is_honoured(pg_url: str) -> None:
    registry, source, records, _ = _setup(5)
    site = site_for(source, records)
    robots = b"User-agent: HuijuCrawler\nDisallow: /xxgk/\n\nUser-agent: *\nAllow: /\n"
    site.files["/robots.txt"] = ("text/plain", robots)
    with site.running(), pytest.raises(WebError, match=r"robots\.txt disallows"):
        _run(registry, source, site)
    assert [path for path, _ in site.requests] == ["/robots.txt"]  # the list itself was never asked for
    [(_, status, _, _)] = loads(pg_url, source.id)
    assert status == "failed" and not landed(pg_url, source.id)


def test_requests_are_spaced_by_the_rate_or_the_sites_crawl_delay() -> None:
    records, _ = generate_records(load_registry(), load_registry().source(BASE), DAY, rows=30)
    site = ListSite(records=records, headers=list(records[0]), page_size=10,
                    robots="User-agent: *\nCrawl-delay: 2\n")
    waits: list[float] = []  # a clock that moves only when the crawler sleeps

    with site.running():
        source = WebSource(base_url=site.url, path=f"{LIST}index.html", rate_limit=5,
                           pagination=WebPagination(kind="next_link"))
        pages = list(fetch_pages(source, ["行政处罚决定书文号"], sleep=waits.append, clock=lambda: sum(waits)))
    assert [p.number for p in pages] == [1, 2, 3]
    assert waits == [2.0, 2.0]  # robots.txt asked for 2 s between requests: slower than 5 a second, so it wins


def _hostile_pages(source: Source, records: list[dict], good: bytes) -> dict[str, tuple[bytes, str, dict[str, object]]]:
    """Page 2 replaced by: (body, what the refusal says, the source's settings)."""
    table_start = good.index(b'<table class="list">')
    table_end = good.index(b"</table>", table_start) + len(b"</table>")
    deep = good[:table_start] + b"<div>" * 5000 + good[table_start:table_end] + b"</div>" * 5000 + good[table_end:]
    longer = site_for(source, records, page_size=20).files[f"{LIST}index.html"][1]  # 20 records on one page
    return {
        "huge_page": (good + b"<!--" + b"x" * 300_000 + b"-->", "max_page_mb", {"max_page_mb": 0.1}),
        "deeply_nested": (deep, "256 levels", {}),
        "no_table": ("<html><body>系统维护中</body></html>".encode("gb18030"), "no table on the page", {}),
        "colspan_bomb": (good[:table_start] + good[table_start:].replace(b"<td>", b'<td colspan="10000000">', 1),
                         "spans 10000000 columns", {}),
        "bad_encoding": (good[:table_start] + good[table_start:].replace(b"</td>", b"\xff\xfe</td>", 1),
                         "not valid gb18030", {}),
        "too_many_records": (longer, "max_page_records", {"max_page_records": 15}),
    }


@pytest.mark.parametrize("case", ["huge_page", "deeply_nested", "no_table", "colspan_bomb", "bad_encoding",
                                  "too_many_records"])
def test_a_hostile_page_is_refused_within_the_caps_and_the_pages_before_it_land(pg_url: str, case: str) -> None:
    registry, source, records, _ = _setup(20)
    site = site_for(source, records, page_size=10)
    page_two = f"{LIST}index_1.html"
    kind, good = site.files[page_two]
    body, says, settings = _hostile_pages(source, records, good)[case]
    registry, source = variant(registry, source.id, rate_limit=None, **settings)
    site.files[page_two] = (kind, body)
    with site.running(), pytest.raises(WebError, match=re.escape(says)):
        _run(registry, source, site)
    ledger = loads(pg_url, source.id)
    assert sorted(row[1] for row in ledger) == ["failed", "received"]  # page 1 landed, once; page 2 refused
    failed = next(row for row in ledger if row[1] == "failed")
    with psycopg.connect(pg_url) as conn:
        error = conn.execute("select error from ops.loads where load_id = %s", (failed[0],)).fetchone()[0]
    assert source.id in error and page_two in error and says in error


def test_scripts_and_a_footer_in_the_table_never_become_data(pg_url: str) -> None:
    registry, source, records, _ = _setup(3)
    site = site_for(source, records)
    kind, body = site.files[f"{LIST}index.html"]
    text = body.decode("gb18030")
    name = records[0]["行政相对人名称"]
    text = text.replace(f"<td>{name}</td>", f"<td>{name}<script>document.cookie</script><style>td{{}}</style></td>", 1)
    width = len(source.columns)
    text = text.replace("</tbody>", f'<tr><td colspan="{width}">备注：以上信息自公示之日起公示三年</td></tr></tbody>')
    site.files[f"{LIST}index.html"] = (kind, text.encode("gb18030"))
    with site.running():
        [result] = _run(registry, source, site)
    assert result.rows_received == 3
    assert any("footer row(s)" in w and "备注：以上信息" in w for w in result.warnings)
    with psycopg.connect(pg_url) as conn:
        names = [r[0] for r in conn.execute("select party_name from raw.admin_penalty where _load_id = %s"
                                            " order by _row_no", (result.load_id,))]
    assert names[0] == name


def test_a_redirect_to_another_site_is_not_followed(pg_url: str) -> None:
    registry, source, records, _ = _setup(3)
    site = site_for(source, records)
    elsewhere = ListSite(records=[], headers=["x"])
    with site.running(), elsewhere.running():
        # The site's first page "moved" to another host: a crawler must not follow it there.
        site.redirects[f"{LIST}index.html"] = elsewhere.url + "/steal"
        with pytest.raises(WebError, match="redirects to another site"):
            _run(registry, source, site)
    assert not any(path == "/steal" for path, _ in elsewhere.requests)
