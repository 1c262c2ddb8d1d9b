"""The SFTP channel: a department drops files on an SFTP server whose host key the platform pins.

Settings (the source's ``sftp:`` block) are :class:`huiju.channel_settings.SftpSettings`: those
of every file drop plus ``host_keys``. The pinned key(s) come from
the Airflow Connection's extra ``host_key`` (an OpenSSH public key line, or a list of them) and
from ``host_keys`` in the settings; at least one is required — an unknown or changed key is
refused, never accepted on first use. Login by password and/or the extra's ``private_key``
(with ``private_key_passphrase``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from huiju_connectors.remote_files import DROP_RETRY, Incomplete
from huiju_connectors.sftp import HostKeyMismatch, SftpSource

from huiju.channel_settings import DropSettings, SftpSettings
from huiju.channels.filedrop import ChannelSetupError, collect_drop, record_event

if TYPE_CHECKING:
    from huiju.channels import CollectContext, ConnectionInfo
    from huiju.landing import LandResult


def pinned_keys(settings: SftpSettings, connection: ConnectionInfo) -> list[str]:
    """The host keys to trust: the Connection's extra ``host_key`` and the settings' ``host_keys``."""
    extra = connection.extra.get("host_key") or []
    pins = [extra] if isinstance(extra, str) else list(extra)
    return [*pins, *settings.host_keys]


def open_source(settings: DropSettings, connection: ConnectionInfo) -> SftpSource:
    """An :class:`SftpSource` for the source's drop, from its settings and resolved Connection."""
    assert isinstance(settings, SftpSettings)
    if not connection.host or not connection.login:
        raise ChannelSetupError(f"Connection {connection.conn_id!r} needs a host and a login")
    pins = pinned_keys(settings, connection)
    if not pins:
        raise ChannelSetupError(
            f"Connection {connection.conn_id!r}: no pinned host key. Confirm the server's key fingerprint with the "
            "department, then put its public key line in the Connection's extra `host_key`")
    return SftpSource(connection.host, connection.port or 22, username=connection.login, host_keys=pins,
                      password=connection.password or None, private_key=connection.extra.get("private_key"),
                      passphrase=connection.extra.get("private_key_passphrase"), directory=settings.directory,
                      encoding=settings.name_encoding, timeout=settings.timeout,
                      retry=replace(DROP_RETRY, attempts=settings.attempts),
                      max_bytes=settings.max_download_bytes)


def collect(ctx: CollectContext) -> list[LandResult]:
    """Land every complete new file on the source's SFTP drop (see :mod:`huiju.channels.filedrop`).

    A server whose host key is not the pinned one is refused (the task fails) and reported to the
    department, which must confirm a real key change out of band.
    """
    try:
        return collect_drop(ctx, open_source)
    except HostKeyMismatch as exc:
        record_event(ctx, Incomplete(f"{exc.host}:{exc.port}", "awaiting_marker", str(exc)), "host_key_mismatch",
                     str(exc))
        raise
