"""The real browser web-page tests drive: Debian's headless chromium through Playwright, with the network cut.

Shared by every test of a web page (the departments' portal now; the stewards' dashboard and the
sharing pages later): registered in ``tests/conftest.py``.

- :func:`ensure_chromium` installs ``chromium`` and ``fonts-noto-cjk`` with the project's own
  script (``tests/support/install_browser.sh``, idempotent, quick when they are there); Playwright only
  drives it (``executable_path``): ``playwright install`` is never used.
- ``chromium`` (session): one browser process for the run.
- ``browser_page``: a fresh context (its own profile: cookies, storage) and page per test, in
  Chinese, with every request recorded and any request not to loopback aborted — pages are
  tested as an intranet user without internet sees them — and asserted absent at the end;
  ``screenshot(name)`` keeps a PNG under ``var/test-artifacts/<test>/``.
- :func:`serve_asgi`: an ASGI app on a free loopback port in a thread, for the browser to open.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from huiju_demo.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
INSTALL_SCRIPT = Path(__file__).resolve().parent / "install_browser.sh"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "var" / "test-artifacts"
# Flags that work headless in a container without a GPU, a sandbox or a network to phone home to.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--lang=zh-CN"]
_LOCAL = re.compile(r"^(https?|wss?)://(127\.0\.0\.1|localhost)(:\d+)?/")


def ensure_chromium() -> Path:
    """Install chromium and a CJK font when missing (``tests/support/install_browser.sh``); the browser's path."""
    done = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise RuntimeError(f"installing the test browser failed:\n{done.stdout}\n{done.stderr}")
    return CHROMIUM


def is_local(url: str) -> bool:
    """Whether a request stays on this machine (loopback, or data:/blob:/about: that never leave it)."""
    return bool(_LOCAL.match(url)) or url.startswith(("data:", "blob:", "about:"))


@dataclass
class BrowserSession:
    """A test's page, what it requested, and where its screenshots go."""

    page: Any
    folder: Path
    requests: list[str] = field(default_factory=list)
    shots: int = 0

    def screenshot(self, name: str) -> Path:
        """Keep a full-page screenshot as a test artefact; returns its path."""
        self.shots += 1
        path = self.folder / f"{self.shots:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def external_requests(self) -> list[str]:
        """Requests that would have left the machine (each was aborted)."""
        return [url for url in self.requests if not is_local(url)]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """The session's headless chromium (installed by the project's script when missing)."""
    executable = ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives each launch a fresh temporary profile (--user-data-dir) of its own.
        browser = playwright.chromium.launch(executable_path=str(executable), headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[BrowserSession]:
    """A fresh browser context and page for one test, network cut but for loopback; no request may leave."""
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.nodeid.split("::", 1)[-1])[:120]
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    context = chromium.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", accept_downloads=True,
                                   viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    session = BrowserSession(page=context.new_page(), folder=folder)
    session.page.on("request", lambda req: session.requests.append(req.url))
    context.route(lambda url: not is_local(url), lambda route: route.abort())
    try:
        yield session
    finally:
        context.close()
    assert session.external_requests() == [], "requests left the machine"


@contextmanager
def serve_asgi(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn on loopback in a thread; yields its base URL (``http://127.0.0.1:<port>``)."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", proxy_headers=False))
    thread = threading.Thread(target=server.run, name=f"asgi-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the app did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
