"""Collection channels: how a source's batches reach the platform.

Each channel is a module ``huiju.channels.<name>`` with:

- ``Settings``: a pydantic model for the source's ``<name>:`` block in ``config/`` (validated
  when the registry loads, so a mistake is reported with the file and key);
- ``collect(ctx: CollectContext) -> list[LandResult]``: fetch what is new and land it with
  :func:`huiju.landing.land_file` or :func:`huiju.landing.land_records`.

Channel modules import only pydantic at module level; their protocol libraries are imported
inside ``collect``. Credentials arrive resolved in ``ctx.connection`` (the Airflow task
resolves the source's Connection; the core never reads Airflow).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg
    from pydantic import BaseModel

    from huiju.landing import LandResult
    from huiju.registry import Registry, Source

CHANNELS = ("inbox", "ftp", "sftp", "rest", "soap", "frontdb", "portal")
# Channels whose batches are files in the source's ``format`` (the portal's uploads are; its manual
# entries are records, landed as such).
FILE_CHANNELS = ("inbox", "ftp", "sftp", "portal")


class ChannelUnavailable(LookupError):
    """The channel is declared in config but not implemented in this build."""


@dataclass(frozen=True)
class ConnectionInfo:
    """Where a source lives and how to log in: an Airflow Connection, already resolved."""

    conn_id: str
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class CollectContext:
    """Everything a channel's ``collect`` needs for one run of one source."""

    registry: Registry
    source: Source
    conn: psycopg.Connection
    data_date: date | None = None
    connection: ConnectionInfo | None = None

    @property
    def settings(self) -> Any:
        """The source's validated channel settings (the channel module's ``Settings``)."""
        return self.source.channel_settings


def channel_module(channel: str) -> ModuleType:
    """The module implementing ``channel``."""
    if channel not in CHANNELS:
        raise ChannelUnavailable(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")
    try:
        return importlib.import_module(f"huiju.channels.{channel}")
    except ModuleNotFoundError as exc:
        if exc.name == f"huiju.channels.{channel}":
            raise ChannelUnavailable(f"channel {channel!r} is not available in this build yet") from None
        raise


def settings_model(channel: str) -> type[BaseModel]:
    """The pydantic model of a channel's settings block."""
    return channel_module(channel).Settings


def collector(channel: str) -> Callable[[CollectContext], list[LandResult]]:
    """The ``collect`` function of a channel."""
    return channel_module(channel).collect
