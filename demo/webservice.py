"""What the simulated department web services share: their records, injected faults, serving on loopback.

The services (:mod:`huiju_demo.rest_gateway`, :mod:`huiju_demo.soap_service`) serve the demo's
departments (:mod:`huiju_demo.simulators`), the channel integration tests and the ``rest_200k``
benchmark, so what the demo shows is what the tests check. Both hold a list of records (dicts
keyed by the department's own field names), page them, filter them by an *inclusive*
updated-since parameter ordered by the update time (the contract of
:mod:`huiju_connectors.incremental`), check credentials the way real gateways do, and accept
injected faults so tests can see retries. Servers run in a daemon thread and stop on exit of
their ``running()``; bodies are deterministic, so the same records give byte-identical pages.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from socketserver import BaseServer
from typing import Any


@dataclass
class Records:
    """Records ordered by update time (then ``key_field``), with a fast inclusive ``>= since`` lookup."""

    records: list[dict[str, Any]]
    updated_field: str | None
    key_field: str | None = None

    def __post_init__(self) -> None:
        if self.updated_field:
            # Stable sort: records sharing a time keep the order they were given in (or their key's).
            updated, key = self.updated_field, self.key_field
            self.records = sorted(self.records, key=lambda r: (str(r[updated]), str(r[key]) if key else ""))
            self._stamps = [str(r[self.updated_field]) for r in self.records]

    def since(self, since: str | None) -> list[dict[str, Any]]:
        if not since or not self.updated_field:
            return self.records
        return self.records[bisect.bisect_left(self._stamps, since):]


@dataclass
class Faults:
    """Faults to inject: each entry ``(params that must match, kind)`` is used once.

    Kinds: ``"500"``, ``"429"`` (with ``Retry-After: 1``), ``"400"`` (a refused parameter),
    ``"slow"`` (answers after ``slow_seconds``), ``"commit-then-timeout"`` (the service counts
    the page as delivered, then answers only after ``slow_seconds``: a client that timed out
    asks again). ``block_at``: the n-th request (1-based) and every later one wait for
    ``release`` — a test kills the client while it waits.
    """

    pending: list[tuple[dict[str, str], str]] = field(default_factory=list)
    slow_seconds: float = 1.5
    block_at: int | None = None
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, params: dict[str, str]) -> str | None:
        with self.lock:
            for i, (match, kind) in enumerate(self.pending):
                if all(params.get(k) == v for k, v in match.items()):
                    del self.pending[i]
                    return kind
        return None

    def unblock(self) -> None:
        """Let the requests waiting at ``block_at`` go on, and block no later one."""
        self.block_at = None
        self.release.set()


class QuietHandler(BaseHTTPRequestHandler):
    """The request handler the demo's and the tests' loopback servers build on: HTTP/1.1 keep-alive, as real
    gateways answer; headers and body leave without Nagle's delay (with it, a body written apart from its
    headers waits for the client's delayed ACK, 40 ms a response on Linux); and no request is logged
    (requests carry signatures and tokens; tests and the demo print their own lines)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving(server: BaseServer, on_exit: threading.Event | None = None) -> Iterator[BaseServer]:
    """``server`` answering in a daemon thread until the block ends (``on_exit`` set first: blocked requests go on)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        if on_exit is not None:
            on_exit.set()
        server.shutdown()
        server.server_close()


def stamped(records: Sequence[dict[str, Any]], updated_field: str | None, day: date) -> list[dict[str, Any]]:
    """The records as a department system serves them: empty values as null, an update time each.

    Update times are one second apart from 08:00 of ``day`` in the records' order, so a
    service ordering by update time serves them in the order given (row ``i`` of the demo's
    manifest is record ``i``).
    """
    start = datetime.combine(day, datetime.min.time()) + timedelta(hours=8)
    out = []
    for i, record in enumerate(records):
        row: dict[str, Any] = {k: (v if v != "" else None) for k, v in record.items()}
        if updated_field:
            row[updated_field] = (start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S")
        out.append(row)
    return out
