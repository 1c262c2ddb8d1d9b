"""A loopback HTTP server that answers what a test scripts: a gateway that ignores the page
parameter, repeats its next-page token, sends an endless body, or redirects a POST elsewhere.

Test-only (the connectors' cap tests and the hostile-input corpus), not part of the demo.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from huiju_demo.webservice import QuietHandler, serving

#: ``answer(method, path, query, body) -> (status, headers, body)``; a body may be an iterable of chunks.
Answer = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes | Iterable[bytes]]]


@dataclass
class ScriptedServer:
    """Answers every request with ``answer``; records ``(method, path, query, body)`` of each."""

    answer: Answer
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    @contextmanager
    def running(self) -> Iterator[ScriptedServer]:
        """Serve on a free port of 127.0.0.1 until the block ends (``self.url`` is the base URL)."""
        scripted = self

        class Handler(QuietHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                scripted.requests.append((self.command, parts.path, query, body))
                status, headers, payload = scripted.answer(self.command, parts.path, query, body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if isinstance(payload, bytes):
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for chunk in payload:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what a cap is for

            do_GET = do_POST = _serve

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        with serving(server):
            self.url = f"http://127.0.0.1:{server.server_address[1]}"
            yield self


def endless(chunk: bytes = b" " * 65536, prefix: bytes = b'{"data": [') -> Iterator[bytes]:
    """A body that never ends (until the client hangs up)."""
    yield prefix
    for _ in range(100_000):
        yield chunk
