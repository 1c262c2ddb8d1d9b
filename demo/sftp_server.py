"""A real SFTP server (asyncssh) on loopback in a background thread: the demo's and the tests' department drop.

Password and/or public-key login, one generated host key (the platform pins it), the drop folder
as the chroot. The tests also make it misbehave (:class:`Faults`): abort the connection, or
stop answering, once a read of a given file passes a given byte.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh


@dataclass
class Faults:
    """Server misbehaviour for the next reads of ``target`` at or past byte ``cut_after``."""

    target: bytes = b""
    cut_after: int = 0
    failures: int = 0
    mode: str = "drop"  # "drop": abort the connection; "stall": never answer
    stall_seconds: float = 8.0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class SftpServer:
    """A running server: where it listens, what it serves, its host key and fault switches."""

    host: str
    port: int
    root: Path
    host_key: asyncssh.SSHKey = field(repr=False)
    faults: Faults
    user: str
    password: str | None = field(default=None, repr=False)

    @property
    def pin(self) -> str:
        """The host's public key as an OpenSSH line: what a client pins."""
        return self.host_key.export_public_key().decode().strip()


def _server_factory(user: str, password: str | None) -> type[asyncssh.SSHServer]:
    class _Auth(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True  # authentication is always required

        def password_auth_supported(self) -> bool:
            return password is not None

        def validate_password(self, username: str, given: str) -> bool:
            return username == user and given == password

    return _Auth


def _sftp_factory(root: Path, faults: Faults) -> type[asyncssh.SFTPServer]:
    class DropSFTP(asyncssh.SFTPServer):
        def __init__(self, chan: asyncssh.SSHServerChannel) -> None:
            super().__init__(chan, chroot=str(root).encode())

        async def read(self, file_obj: object, offset: int, size: int) -> bytes:
            name = os.path.basename(getattr(file_obj, "name", b"") or b"")
            if isinstance(name, str):
                name = name.encode()
            misbehave = False
            with faults.lock:
                if name == faults.target and faults.failures > 0 and offset + size > faults.cut_after:
                    faults.failures -= 1
                    misbehave = True
            if misbehave:
                if faults.mode == "stall":
                    await asyncio.sleep(faults.stall_seconds)
                else:
                    self.connection.abort()
                    return b""
            return super().read(file_obj, offset, size)

    return DropSFTP


class _Loop:
    """An event loop in a daemon thread, so the server runs beside synchronous code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="huiju-sftp-server", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextmanager
def serve_sftp(root: Path, *, user: str, password: str | None = None,
               authorized_keys: Sequence[asyncssh.SSHKey] = (), host_key: asyncssh.SSHKey | None = None,
               port: int = 0) -> Iterator[SftpServer]:
    """Serve ``root`` over SFTP on 127.0.0.1 (``port`` 0: any free port) until exit.

    ``user`` logs in with ``password`` and/or one of ``authorized_keys``. ``host_key`` defaults
    to a fresh Ed25519 key (see :attr:`SftpServer.pin`).
    """
    host_key = host_key or asyncssh.generate_private_key("ssh-ed25519")
    faults = Faults()
    authorized = None
    if authorized_keys:
        lines = "".join(k.export_public_key().decode() for k in authorized_keys)
        authorized = asyncssh.import_authorized_keys(lines)
    loop = _Loop()

    async def start() -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            "127.0.0.1",
            port,
            server_host_keys=[host_key],
            server_factory=_server_factory(user, password),
            authorized_client_keys=authorized,
            sftp_factory=_sftp_factory(root, faults),
            allow_scp=False,
        )

    try:
        acceptor = loop.run(start())
    except BaseException:
        loop.stop()
        raise
    try:
        yield SftpServer("127.0.0.1", acceptor.get_port(), root, host_key, faults, user, password)
    finally:

        async def stop() -> None:
            acceptor.close()
            await acceptor.wait_closed()
            # Sessions of clients that are still connected (or whose connection was cut) keep
            # their SFTP handler tasks running; end them here, or the loop is closed with tasks
            # pending ("Task was destroyed but it is pending").
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            await asyncio.get_running_loop().shutdown_asyncgens()

        loop.run(stop())
        loop.stop()
