"""The FTP channel: a department drops files on an FTP or FTPS server; the platform takes complete ones.

Settings (the source's ``ftp:`` block) are those of every file drop (see
:class:`huiju.channels._filedrop.DropSettings`) plus FTPS: ``tls: true`` switches to explicit
FTPS with the server certificate verified against ``ca_file`` (or the system trust store);
verification cannot be turned off. Host, port, login and password come from the source's
Airflow Connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import model_validator

from huiju.channels._filedrop import ChannelSetupError, DropSettings, collect_drop

if TYPE_CHECKING:
    from huiju_connectors.ftp import FtpSource

    from huiju.channels import CollectContext, ConnectionInfo
    from huiju.landing import LandResult


class Settings(DropSettings):
    """The ``ftp:`` block of a source."""

    directory: str = "/"
    tls: bool = False
    ca_file: str | None = None  # PEM bundle of the CA that signed the server's certificate

    @model_validator(mode="after")
    def _ca_needs_tls(self) -> Settings:
        if self.ca_file is not None and not self.tls:
            raise ValueError("ca_file is only used with tls: true (FTPS)")
        return self


def open_source(settings: DropSettings, connection: ConnectionInfo) -> FtpSource:
    """An :class:`FtpSource` for the source's drop, from its settings and resolved Connection."""
    from huiju_connectors.ftp import FtpSource

    assert isinstance(settings, Settings)
    if not connection.host:
        raise ChannelSetupError(f"Connection {connection.conn_id!r} has no host")
    return FtpSource(connection.host, connection.port or 21, user=connection.login or "anonymous",
                     password=connection.password or "", directory=settings.directory,
                     encoding=settings.encoding, tls=settings.tls, ca_file=settings.ca_file,
                     timeout=settings.timeout_seconds, attempts=settings.attempts)


def collect(ctx: CollectContext) -> list[LandResult]:
    """Land every complete new file on the source's FTP drop (see :mod:`huiju.channels._filedrop`)."""
    return collect_drop(ctx, open_source)
