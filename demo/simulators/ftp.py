"""A simulated department FTP server for the demo: a real pyftpdlib server on loopback serving the day's file."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from huiju_demo.ftp_server import serve_ftp
from huiju_demo.simulators import SimulatedSource
from huiju_demo.simulators._filedrop import prepare_drop
from pyftpdlib.handlers import FTPHandler

from huiju.registry import Registry, Source


@contextmanager
def simulate(registry: Registry, source: Source, day: date, rows: int, workdir: Path) -> Iterator[SimulatedSource]:
    """Serve ``source``'s file (and its ``.done`` marker) for ``day`` over FTP until exit."""
    root, submission = prepare_drop(registry, source, day, rows, workdir)
    user, password = source.department, secrets.token_urlsafe(18)
    handler = type("DemoFTPHandler", (FTPHandler,), {"encoding": source.channel_settings.name_encoding})
    with serve_ftp(root, user=user, password=password, handler=handler) as server:
        connection = {"conn_type": "ftp", "host": server.host, "port": server.port, "login": user,
                      "password": password}
        assert source.connection is not None  # checked by prepare_drop
        yield SimulatedSource(submission=submission, connection_id=source.connection, connection=connection)
