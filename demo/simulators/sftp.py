"""A simulated department SFTP server for the demo: a real asyncssh server on loopback serving the day's file."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from huiju_demo.sftp_server import serve_sftp
from huiju_demo.simulators import SimulatedSource
from huiju_demo.simulators._filedrop import prepare_drop

from huiju.registry import Registry, Source


@contextmanager
def simulate(registry: Registry, source: Source, day: date, rows: int, workdir: Path) -> Iterator[SimulatedSource]:
    """Serve ``source``'s file for ``day`` over SFTP until exit; yield it with its Airflow Connection.

    The Connection pins the server's freshly generated host key in its extra ``host_key``, the
    way a steward records the key confirmed with the department.
    """
    root, submission = prepare_drop(registry, source, day, rows, workdir)
    user, password = source.department, secrets.token_urlsafe(18)
    with serve_sftp(root, user=user, password=password) as server:
        connection = {"conn_type": "sftp", "host": server.host, "port": server.port, "login": user,
                      "password": password, "extra": {"host_key": server.pin}}
        assert source.connection is not None  # checked by prepare_drop
        yield SimulatedSource(submission=submission, connection_id=source.connection, connection=connection)
