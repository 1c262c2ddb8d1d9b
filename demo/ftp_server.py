"""A real FTP server (pyftpdlib) on loopback in a background thread: the demo's and the tests' department drop.

One implementation serves both the demo (a simulated department that drops files on FTP) and
the connector tests, which also need it to misbehave the ways real servers do: the data
connection dropped mid-file while the server still answers "226 Transfer complete", or a
transfer that stalls with the connection open (:class:`TruncatingDTP`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.servers import ThreadedFTPServer


class TruncatingDTP(DTPHandler):
    """Sends ``cut_after`` bytes of the first ``failures`` downloads of ``target``, then misbehaves.

    ``mode="drop"`` closes the data connection and still answers "226 Transfer complete" (the
    nastiest real-world case); ``mode="stall"`` stops sending and keeps the connection open.
    The settings are class attributes: :func:`serve_ftp` makes a fresh subclass per server.
    """

    target = ""
    cut_after = 0
    failures = 0
    mode = "drop"
    lock = threading.Lock()

    def __init__(self, sock: Any, cmd_channel: Any) -> None:
        super().__init__(sock, cmd_channel)
        self._cut = False
        self._stalled = False

    def push_with_producer(self, producer: Any) -> None:
        """Decide, when a download starts, whether this one is to be cut."""
        name = os.path.basename(getattr(self.file_obj, "name", "") or "")
        cls = type(self)
        with cls.lock:
            if name == cls.target and cls.failures > 0:
                cls.failures -= 1
                self._cut = True
        super().push_with_producer(producer)

    def send(self, data: bytes) -> int:
        """Send normally, or only up to ``cut_after`` bytes of a download that is to be cut."""
        if not self._cut:
            return super().send(data)
        room = type(self).cut_after - self.tot_bytes_sent
        if room > 0:
            return super().send(data[:room])
        if type(self).mode == "stall":
            self._stalled = True
            return 0
        self.discard_buffers()  # pretend everything was sent: the server answers 226
        self.handle_close()
        return 0

    def writable(self) -> bool:
        """A stalled transfer never becomes writable again."""
        return not self._stalled and super().writable()


@dataclass(frozen=True)
class FtpServer:
    """A running server: where it listens, the folder it serves and its handler class."""

    host: str
    port: int
    root: Path
    handler: type[FTPHandler]
    user: str
    password: str

    @property
    def faults(self) -> type[TruncatingDTP]:
        """The data-connection class whose attributes make the next downloads misbehave."""
        return self.handler.dtp_handler


def fault_handler() -> type[FTPHandler]:
    """A fresh FTPHandler subclass with its own :class:`TruncatingDTP` (settings are class attributes)."""
    dtp = type("DTP", (TruncatingDTP,), {"failures": 0, "lock": threading.Lock()})
    # sendfile() would bypass the DTP's send(), so the faults could not see the bytes.
    return type("Handler", (FTPHandler,), {"dtp_handler": dtp, "use_sendfile": False})


@contextmanager
def serve_ftp(root: Path, *, user: str, password: str, handler: type[FTPHandler] | None = None,
              port: int = 0) -> Iterator[FtpServer]:
    """Serve ``root`` to ``user``/``password`` on 127.0.0.1 (``port`` 0: any free port) until exit.

    ``handler`` is an FTPHandler subclass to configure (e.g. a GBK or TLS handler); by default
    :func:`fault_handler`. The class is modified in place (authorizer, timeouts).
    """
    handler = handler or fault_handler()
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, str(root), perm="elradfmwMT")
    handler.authorizer = authorizer
    handler.auth_failed_timeout = 0.1
    handler.banner = "Huiju demo FTP"
    server = ThreadedFTPServer(("127.0.0.1", port), handler)
    server.join_timeout = 2
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=loop, name="huiju-ftp-server", daemon=True)
    thread.start()
    host, bound = server.address[:2]
    try:
        yield FtpServer(host, bound, root, handler, user, password)
    finally:
        stop.set()
        thread.join(10)
