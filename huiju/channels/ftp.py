"""The FTP channel: a department drops files on an FTP or FTPS server; the platform takes complete ones.

Settings (the source's ``ftp:`` block) are :class:`huiju.channel_settings.FtpSettings`: those of
every file drop plus FTPS. Host, port, login and password come from the source's Airflow
Connection.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from huiju_connectors.ftp import FtpSource
from huiju_connectors.remote_files import DROP_RETRY

from huiju.channel_settings import DropSettings, FtpSettings
from huiju.channels.connection import ca_file
from huiju.channels.filedrop import ChannelSetupError, collect_drop

if TYPE_CHECKING:
    from huiju.channels import CollectContext, ConnectionInfo
    from huiju.landing import LandResult


def open_source(settings: DropSettings, connection: ConnectionInfo) -> FtpSource:
    """An :class:`FtpSource` for the source's drop, from its settings and resolved Connection."""
    assert isinstance(settings, FtpSettings)
    if not connection.host:
        raise ChannelSetupError(f"Connection {connection.conn_id!r} has no host")
    return FtpSource(connection.host, connection.port or 21, user=connection.login or "anonymous",
                     password=connection.password or "", directory=settings.directory,
                     encoding=settings.name_encoding, tls=settings.tls,
                     ca_file=ca_file(settings.ca_file, connection), timeout=settings.timeout,
                     retry=replace(DROP_RETRY, attempts=settings.attempts),
                     max_bytes=settings.max_download_bytes)


def collect(ctx: CollectContext) -> list[LandResult]:
    """Land every complete new file on the source's FTP drop (see :mod:`huiju.channels.filedrop`)."""
    return collect_drop(ctx, open_source)
