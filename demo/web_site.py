"""A department's public website for the demo: its 行政处罚公示 list as HTML pages, on loopback.

The site is static, as a government CMS publishes it: ``<list>/index.html`` and then
``index_1.html``, ``index_2.html`` … each with a table of ``page_size`` records (the department's
own column headers), navigation, scripts and a 下一页 link, in the encoding the site declares
(``gb2312`` on many of them), and a ``robots.txt``. The demo's department (:mod:`huiju_demo.simulators.web`),
the web channel's tests (which replace pages with hostile ones: ``files``) and the ``web_pages_1k``
benchmark use it.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from huiju_demo.webservice import QuietHandler, serving

ROBOTS = "User-agent: *\nDisallow: /admin/\nDisallow: /search\n"


@dataclass
class ListSite:
    """A static site serving ``records`` (dicts keyed by ``headers``) as a paged list under ``list_path``."""

    records: list[dict[str, Any]]
    headers: list[str]
    list_path: str = "/xxgk/xzcf/"
    page_size: int = 20
    encoding: str = "utf-8"
    title: str = "行政处罚公示"
    robots: str | None = ROBOTS
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # path → (content type, body)
    redirects: dict[str, str] = field(default_factory=dict)  # path → where it moved (HTTP 302)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, user agent) of every request
    url: str = ""

    def __post_init__(self) -> None:
        pages = max(1, -(-len(self.records) // self.page_size))
        declared = "gb2312" if self.encoding in ("gb18030", "gbk", "gb2312") else self.encoding
        for number in range(1, pages + 1):
            self.files[self.page_path(number)] = (f"text/html; charset={declared}", self.page(number, pages, declared))
        if self.robots is not None:
            self.files["/robots.txt"] = ("text/plain", self.robots.encode())

    def page_path(self, number: int) -> str:
        """Page ``number`` (1-based): ``index.html``, then ``index_1.html`` …"""
        return self.list_path + ("index.html" if number == 1 else f"index_{number - 1}.html")

    def page(self, number: int, pages: int, declared: str) -> bytes:
        """Page ``number`` of ``pages`` as the CMS writes it."""
        chunk = self.records[(number - 1) * self.page_size: number * self.page_size]
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(h) or ''))}</td>" for h in self.headers) + "</tr>"
                       for r in chunk)
        links = []
        if number > 1:
            links.append(f'<a href="{self.page_path(number - 1).rsplit("/", 1)[-1]}">上一页</a>')
        if number < pages:
            links.append(f'<a href="{self.page_path(number + 1).rsplit("/", 1)[-1]}">下一页</a>')
        text = (f'<!DOCTYPE html><html><head><meta charset="{declared}"><title>{self.title}</title>'
                '<script>var _hmt = _hmt || []; document.write("<table><tr><td>统计</td></tr></table>");</script>'
                '<style>table.list td {border: 1px solid #ccc}</style></head><body>'
                f'<div class="nav"><a href="/">首页</a> &gt; <a href="{self.list_path}">{self.title}</a></div>'
                f'<table class="layout"><tr><td><h1>{self.title}</h1>'
                f'<table class="list"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
                f'</td></tr></table><div class="pages">共{pages}页 当前第{number}页 {" ".join(links)}</div>'
                '</body></html>')
        return text.encode(self.encoding)

    @contextmanager
    def running(self) -> Iterator[ListSite]:
        """Serve on a free port of 127.0.0.1 until the block ends (``self.url``: the site's address)."""
        site = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                site.requests.append((path, self.headers.get("User-Agent", "")))
                if path in site.redirects:
                    self.send_response(302)
                    self.send_header("Location", site.redirects[path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                found = site.files.get(path)
                status, kind, body = (200, *found) if found else (404, "text/html", b"<html>404</html>")
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        with serving(server):
            self.url = f"http://127.0.0.1:{server.server_address[1]}"
            yield self
