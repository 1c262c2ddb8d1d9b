"""Web benchmark: `web_pages_1k`, the web channel landing 1,000 list pages of 100 rows from a site on loopback.

The site (:class:`huiju_demo.web_site.ListSite`, the demo's department website: GB2312 pages with
navigation, scripts and a 下一页 link) runs in this process; both measured clients run in their own
process:

* ours: the web channel's ``collect`` — robots.txt, every page fetched (httpx, retries, caps),
  decoded and parsed (lxml), its table found by the source's headers, footer rule applied, the
  page archived as received and landed as its own load (groups of up to 50 pages a transaction);
* anchor: the bare httpx client fetching the same 1,000 pages and discarding the bodies, run just
  before and just after ours (their mean).
"""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

from bench.harness import Entry, rows_entry, run_isolated
from bench.webservice import timed_collect

PAGES = 1_000
PAGE_SIZE = 100
BASE_ROWS = 1_000  # distinct generated rows, repeated with distinct decision numbers (Faker is slow)
DAY = date(2026, 11, 20)
SOURCE = "wjw_penalty"


def _bench_source() -> tuple:
    """The demo's 卫生健康委员会 source, without a rate limit (the site is on loopback)."""
    from huiju.registry import load_registry

    registry = load_registry()
    source = registry.source(SOURCE)
    settings = source.channel_settings.model_copy(update={"rate_limit": None, "max_pages": PAGES + 1})
    source = source.model_copy(update={"id": "bench_web", "channel_settings": settings})
    return registry.model_copy(update={"sources": {**registry.sources, source.id: source}}), source


def _site() -> object:
    from huiju_demo.generate import generate_records
    from huiju_demo.simulators.web import site_for

    registry, source = _bench_source()
    base, _ = generate_records(registry, registry.source(SOURCE), DAY, rows=BASE_ROWS)
    key = source.header_for_field["decision_no"]
    rows = [{**row, key: f"{row[key]}-{n:03d}"} for n in range(PAGES * PAGE_SIZE // BASE_ROWS) for row in base]
    return site_for(source, rows, page_size=PAGE_SIZE)


def _ours(url: str, base_url: str, var: str, out: str) -> None:
    """Child process: the web channel collects every page into the warehouse at ``url``."""
    registry, source = _bench_source()
    import huiju_connectors.web  # noqa: F401  (imported before the clock starts, as the anchor's httpx is)

    seconds, results = timed_collect(url, base_url, var, registry, source)
    Path(out).write_text(json.dumps({"seconds": seconds, "rows": sum(r.rows_received for r in results),
                                     "pages": len(results)}))


def _anchor(base_url: str, paths: str, out: str) -> None:
    """Child process: bare httpx GETs of the same pages, bodies discarded."""
    import httpx

    with httpx.Client(timeout=60) as client:
        started = time.perf_counter()
        received = 0
        for path in json.loads(paths):
            response = client.get(base_url + path)
            response.raise_for_status()
            received += len(response.content)
        seconds = time.perf_counter() - started
    Path(out).write_text(json.dumps({"seconds": seconds, "bytes": received}))


def web_pages_1k(url: str, work: Path) -> Entry:
    """Web: 1,000 list pages of 100 rows landed by the platform vs bare httpx fetching them."""
    site = _site()
    paths = json.dumps([site.page_path(n) for n in range(1, PAGES + 1)])  # type: ignore[attr-defined]
    anchors = []
    with site.running():  # type: ignore[attr-defined]
        ours_out = work / "web_ours.json"
        for when in ("before", "after"):
            anchor_out = work / f"web_anchor_{when}.json"
            run_isolated("bench.web", "_anchor", site.url, paths, str(anchor_out))  # type: ignore[attr-defined]
            anchors.append(json.loads(anchor_out.read_text())["seconds"])
            if when == "before":
                peak = run_isolated("bench.web", "_ours", url, site.url, str(work / "var"),  # type: ignore[attr-defined]
                                    str(ours_out))
    ours = json.loads(ours_out.read_text())
    assert (ours["rows"], ours["pages"]) == (PAGES * PAGE_SIZE, PAGES), ours
    return rows_entry("web_pages_1k", ours["rows"], ours["seconds"], "bare httpx GET of the same pages, discarded",
                      sum(anchors) / len(anchors), peak, target_ratio=0.5,
                      note=f"ours: {ours['pages']} pages (GB2312, {PAGE_SIZE} rows each) with robots.txt, each "
                           "decoded, parsed (lxml), its table found by header, archived as received and landed as "
                           "its own load, in groups of 50 a transaction; "
                           f"anchor: mean of {anchors[0]:.2f} s before and {anchors[1]:.2f} s after ours")


BENCHMARKS = {"web_pages_1k": web_pages_1k}
