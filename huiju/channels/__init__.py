"""Collection channels: how a source's batches reach the platform.

A channel is two things, kept apart:

- its settings model in :mod:`huiju.channel_settings` (the source's ``<name>:`` block in
  ``config/``, validated when the registry loads, so a mistake is reported with the file and
  key) — all the registry imports;
- its collection code, the module ``huiju.channels.<name>`` with
  ``collect(ctx: CollectContext) -> list[LandResult]``: fetch what is new through the
  connectors and land it with :mod:`huiju.landing`. It is imported by name when a source of
  that channel is collected (:func:`collector`), so loading the registry, or parsing a DAG,
  never imports a protocol library.

Credentials arrive resolved in ``ctx.connection`` (the Airflow task resolves the source's
Connection; the core never reads Airflow).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from types import ModuleType
from typing import TYPE_CHECKING, Any

from huiju.channel_settings import CHANNELS, FILE_CHANNELS, ChannelUnavailable, settings_model
from huiju.channels.connection import ConnectionInfo

if TYPE_CHECKING:
    import psycopg

    from huiju.landing import LandResult
    from huiju.registry import Registry, Source

__all__ = ["CHANNELS", "FILE_CHANNELS", "ChannelUnavailable", "CollectContext", "ConnectionInfo", "collector",
           "settings_model"]


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
        """The source's validated channel settings (its model in :mod:`huiju.channel_settings`)."""
        return self.source.channel_settings


def collector(channel: str) -> Callable[[CollectContext], list[LandResult]]:
    """The ``collect`` function of a channel, its module imported now (see the module docstring)."""
    settings_model(channel)  # an unknown channel is refused by name
    module: ModuleType = importlib.import_module(f"huiju.channels.{channel}")
    return module.collect
