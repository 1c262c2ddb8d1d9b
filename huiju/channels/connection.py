"""Where a source lives and how to log in: its Airflow Connection, resolved, and what channels read from it.

The Airflow task resolves the source's Connection (the core never reads Airflow) into a
:class:`ConnectionInfo`; channels take the address, credentials and trust anchors from it. Files
a source names (a CA bundle, a WSDL) are relative to ``config/`` unless absolute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huiju.settings import get_settings


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


def base_url(connection: ConnectionInfo | None, source_id: str) -> str:
    """The service's base URL from the source's Connection (``extra.base_url`` or scheme://host:port)."""
    if connection is None:
        raise ValueError(f"{source_id}: no Connection resolved; set `connection:` in the source's config "
                         "and define that Airflow Connection")
    explicit = connection.extra.get("base_url")
    if explicit:
        return str(explicit).rstrip("/")
    if not connection.host:
        raise ValueError(f"{source_id}: Connection {connection.conn_id!r} has no host (and no extra.base_url)")
    if "://" in connection.host:
        url = connection.host.rstrip("/")
    else:
        scheme = connection.extra.get("scheme") or (connection.schema if connection.schema in ("http", "https")
                                                     else "https")
        url = f"{scheme}://{connection.host}"
    return f"{url}:{connection.port}" if connection.port else url


def config_path(relative: str) -> str:
    """A path from the configuration, relative to ``config/`` unless absolute."""
    path = Path(relative)
    return str(path if path.is_absolute() else get_settings().config_dir / path)


def ca_file(configured: str | None, connection: ConnectionInfo) -> str | None:
    """The CA file to verify the server against: the settings' ``ca_file``, else the Connection's ``extra.ca_file``."""
    if "ca_bundle" in connection.extra:
        raise ValueError(f"Connection {connection.conn_id!r}: extra 'ca_bundle' is renamed to 'ca_file'")
    chosen = configured or connection.extra.get("ca_file")
    return config_path(chosen) if chosen else None


def secret(connection: ConnectionInfo, name: str, field_value: str | None) -> str:
    """A credential from the Connection (its field, else ``extra[name]``), or a clear error."""
    value = field_value or connection.extra.get(name)
    if not value:
        raise ValueError(f"Connection {connection.conn_id!r} lacks {name}")
    return str(value)
