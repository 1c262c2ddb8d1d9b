"""Connecting to a front-end database: the endpoint, the SQLAlchemy engine, and errors a steward can act on.

Errors a retry cannot fix — a wrong password, a server that requires Oracle native network
encryption (DPY-3001, unsupported in thin mode) — are raised as :class:`FrontDbConfigError`
(``retryable = False``) at the first attempt; the engine uses no pool and never retries.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import NullPool

DIALECTS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql", "oracle": "oracle+oracledb"}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "oracle": 1521}


class FrontDbError(RuntimeError):
    """Reading a front-end database failed; the message says what to check."""

    retryable = True


class FrontDbConfigError(FrontDbError):
    """The connection is configured wrongly (password, encryption, TLS): retrying cannot help."""

    retryable = False


@dataclass(frozen=True)
class Tls:
    """TLS for the source connection; ``verify`` checks the certificate chain *and* the host name."""

    enabled: bool = True
    verify: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """Where the front-end database is and how to log in (from an Airflow Connection)."""

    dialect: str
    host: str | None
    port: int | None
    user: str | None
    password: str | None = field(default=None, repr=False)
    database: str | None = None  # PostgreSQL/MySQL database; Oracle service name
    tls: Tls = field(default_factory=Tls)
    options: Mapping[str, str] = field(default_factory=dict)  # extra URL query parameters
    timezone: str = "Asia/Shanghai"  # session time zone: naive timestamps are local time
    connect_timeout: int = 15


def engine_url(endpoint: Endpoint) -> URL:
    """The SQLAlchemy URL of ``endpoint`` (the password is kept out of its string form)."""
    if endpoint.dialect not in DIALECTS:
        raise FrontDbConfigError(f"unknown front-end database dialect {endpoint.dialect!r}; "
                                 f"known: {', '.join(DIALECTS)}")
    query = dict(endpoint.options)
    database = endpoint.database
    if endpoint.dialect == "oracle" and database:
        query.setdefault("service_name", database)
        database = None
    host = endpoint.host
    if endpoint.dialect == "postgresql" and host and host.startswith("/"):
        query["host"] = host  # a Unix socket directory, which libpq takes as host=
        host = None
    return URL.create(DIALECTS[endpoint.dialect], username=endpoint.user, password=endpoint.password, host=host,
                      port=endpoint.port if host else None, database=database, query=query)


def connect_args(endpoint: Endpoint) -> dict[str, Any]:
    """Driver arguments: TLS, time zone, timeouts and, for MySQL, ``local_infile`` off."""
    tls = endpoint.tls
    if endpoint.dialect == "postgresql":
        args: dict[str, Any] = {"connect_timeout": endpoint.connect_timeout,
                                "options": f"-c timezone={endpoint.timezone}"}
        if tls.enabled:
            args["sslmode"] = "verify-full" if tls.verify else "require"
            if tls.ca_file:
                args["sslrootcert"] = tls.ca_file
            if tls.cert_file:
                args["sslcert"], args["sslkey"] = tls.cert_file, tls.key_file
        return args
    if endpoint.dialect == "mysql":
        # LOAD DATA LOCAL lets a hostile server read files from the client: never enabled.
        args = {"local_infile": False, "connect_timeout": endpoint.connect_timeout, "charset": "utf8mb4",
                "init_command": f"SET time_zone = '{_offset_of(endpoint.timezone)}'"}
        if tls.enabled:
            # A context of our own, not PyMySQL's ssl dict: given no CA, the dict form turns the host
            # name check (and verification) off; here the system roots are used and both stay on.
            args["ssl"] = _mysql_ssl_context(tls)
        return args
    args = {"tcp_connect_timeout": float(endpoint.connect_timeout)}
    if tls.enabled:
        args["protocol"] = "tcps"
        args["ssl_server_dn_match"] = tls.verify
        if tls.ca_file:
            args["wallet_location"] = tls.ca_file
    return args


def _mysql_ssl_context(tls: Tls) -> ssl.SSLContext:
    """The TLS context for a MySQL source: verified chain and host name unless ``verify`` is off."""
    context = ssl.create_default_context(cafile=tls.ca_file)
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, keyfile=tls.key_file)
    return context


def _offset_of(timezone: str) -> str:
    """A fixed UTC offset for MySQL sessions: its named zones need tables many servers lack."""
    offset = datetime.now(ZoneInfo(timezone)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def create_source_engine(endpoint: Endpoint) -> Engine:
    """An engine without a pool: each run opens one connection and closes it, and nothing retries."""
    return sa.create_engine(engine_url(endpoint), connect_args=connect_args(endpoint), poolclass=NullPool)


_AUTH_PATTERNS = (
    re.compile(r"password authentication failed|28P01", re.I),  # PostgreSQL
    re.compile(r"\(1045,|Access denied for user", re.I),  # MySQL/MariaDB
    re.compile(r"ORA-01017|ORA-28000|DPY-4001", re.I),  # Oracle: bad credentials, locked account
)


def map_error(exc: BaseException, where: str) -> FrontDbError:
    """Turn a driver error into a :class:`FrontDbError` whose message a steward can act on.

    ``where`` names the source (never the password). Configuration errors are not retryable.
    """
    text = str(getattr(exc, "orig", None) or exc)
    if "DPY-3001" in text:
        return FrontDbConfigError(
            f"{where}: the Oracle server requires native network encryption (DPY-3001), which the thin-mode "
            "driver cannot speak; ask the department's DBA to allow TLS (TCPS) connections for this account "
            "and set tls.enabled in the source's frontdb settings")
    if any(p.search(text) for p in _AUTH_PATTERNS):
        return FrontDbConfigError(f"{where}: login refused (wrong user name or password, or the account is "
                                  "locked); check the Airflow Connection — not retried, to avoid locking the account")
    if re.search(r"certificate verify failed|SSL error|sslmode|CERTIFICATE_VERIFY", text, re.I):
        return FrontDbConfigError(f"{where}: TLS verification failed: {text.splitlines()[0]}")
    return FrontDbError(f"{where}: {text.splitlines()[0] if text else type(exc).__name__}")
