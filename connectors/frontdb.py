"""Front-end databases (前置库): reading a department's table or view through SQLAlchemy 2.

Dialects: PostgreSQL (psycopg 3), MySQL/MariaDB (PyMySQL) and Oracle (python-oracledb in thin
mode, so no Oracle client is installed anywhere). The core passes credentials in; nothing here
reads configuration or Airflow.

Reading streams: a server-side cursor (``stream_results=True``) fetched ``yield_per`` rows at a
time, so memory stays flat whatever the table size. Queries are SQLAlchemy Core expressions over
lightweight ``table()``/``column()`` objects and compile for every dialect; the keyset condition
"strictly after (watermark, key1, key2 …)" is written as nested ``OR``/``AND`` rather than a
row-value comparison, because Oracle has no ``(a, b) > (x, y)``.

Errors a retry cannot fix — a wrong password, a server that requires Oracle native network
encryption (DPY-3001, unsupported in thin mode) — are raised as :class:`FrontDbConfigError`
(``retryable = False``) at the first attempt; the engine uses no pool and never retries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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

    enabled: bool = False
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
            ssl: dict[str, Any] = {"check_hostname": tls.verify}
            if tls.ca_file:
                ssl["ca"] = tls.ca_file
            if tls.cert_file:
                ssl["cert"], ssl["key"] = tls.cert_file, tls.key_file
            if tls.verify:
                ssl["verify_mode"] = True
            args["ssl"] = ssl
        return args
    args = {"tcp_connect_timeout": float(endpoint.connect_timeout)}
    if tls.enabled:
        args["protocol"] = "tcps"
        args["ssl_server_dn_match"] = tls.verify
        if tls.ca_file:
            args["wallet_location"] = tls.ca_file
    return args


def _offset_of(timezone: str) -> str:
    """A fixed UTC offset for MySQL sessions: its named zones need tables many servers lack."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    offset = datetime.now(ZoneInfo(timezone)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def create_source_engine(endpoint: Endpoint) -> Engine:
    """An engine without a pool: each run opens one connection and closes it, and nothing retries."""
    return sa.create_engine(engine_url(endpoint), connect_args=connect_args(endpoint), poolclass=NullPool)


# --- errors ------------------------------------------------------------------------------------

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


# --- reflection and queries ----------------------------------------------------------------------

@dataclass(frozen=True)
class SourceColumn:
    """A column of the department's table as the database describes it."""

    name: str
    type: str  # the type's compiled name, e.g. VARCHAR(200), TIMESTAMP


def describe_table(conn: sa.Connection, table: str, schema: str | None) -> list[SourceColumn]:
    """The table's (or view's) columns in order; an empty list when it does not exist."""
    inspector = sa.inspect(conn)
    try:
        columns = inspector.get_columns(table, schema=schema)
    except sa.exc.NoSuchTableError:
        return []
    out = []
    for column in columns:
        try:
            type_name = column["type"].compile(dialect=conn.dialect)
        except Exception:  # an exotic type the dialect cannot render still has a name
            type_name = type(column["type"]).__name__
        out.append(SourceColumn(column["name"], str(type_name)))
    return out


def source_table(table: str, columns: Sequence[str], schema: str | None) -> sa.TableClause:
    """A lightweight table clause (no reflection, no metadata) for building queries."""
    return sa.table(table, *(sa.column(c) for c in columns), schema=schema)


def after_condition(columns: Sequence[sa.ColumnElement], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """``(c1, c2, …) > (v1, v2, …)`` in lexicographic order, as plain AND/OR every dialect accepts."""
    first, value = columns[0], values[0]
    if len(columns) == 1:
        return first > value
    return sa.or_(first > value, sa.and_(first == value, after_condition(columns[1:], values[1:])))


def watermark_query(table: sa.TableClause, watermark: str, keys: Sequence[str], since: Any | None = None,
                    after: Sequence[Any] | None = None) -> sa.Select:
    """Rows with a watermark ``>= since`` (or strictly after the pair ``after``), ordered by (watermark, keys).

    ``since`` is the greatest watermark already landed: rows sharing it are read again, so a
    row that arrives later with that very watermark — whatever its key — is not lost; the
    caller skips the keys it already landed at that watermark (they come first, in key order).
    ``after`` (a (watermark, keys…) pair) is the older, pair-only position, kept for cursors
    stored before the keys at the watermark were.
    """
    order = [table.c[watermark], *(table.c[k] for k in keys)]
    query = sa.select(*table.c).where(table.c[watermark].is_not(None)).order_by(*order)
    if since is not None:
        query = query.where(table.c[watermark] >= since)
    elif after is not None:
        query = query.where(after_condition(order, after))
    return query


def flag_query(table: sa.TableClause, flag: str, pending: str, keys: Sequence[str], limit: int) -> sa.Select:
    """Up to ``limit`` rows the department marked pending, in key order."""
    return (sa.select(*table.c).where(table.c[flag] == pending)
            .order_by(*(table.c[k] for k in keys)).limit(limit))


def snapshot_query(table: sa.TableClause, keys: Sequence[str]) -> sa.Select:
    """Every row, in key order (stable batches, so an unchanged snapshot lands as repeats)."""
    return sa.select(*table.c).order_by(*(table.c[k] for k in keys))


def mark_rows(conn: sa.Connection, table: sa.TableClause, keys: Sequence[str], key_values: Sequence[Sequence[Any]],
              values: Mapping[str, Any], only_if: sa.ColumnElement[bool] | None = None) -> int:
    """Write ``values`` back to the rows with the given keys (exchange-flag acknowledgement)."""
    done = 0
    for start in range(0, len(key_values), 500):  # Oracle caps IN lists at 1000 items
        chunk = key_values[start:start + 500]
        if len(keys) == 1:
            match = table.c[keys[0]].in_([k[0] for k in chunk])
        else:
            match = sa.or_(*(sa.and_(*(table.c[n] == v for n, v in zip(keys, k, strict=True))) for k in chunk))
        statement = sa.update(table).where(match).values(**values)
        if only_if is not None:
            statement = statement.where(only_if)
        done += conn.execute(statement).rowcount
    return done


def stream(conn: sa.Connection, query: sa.Executable, batch_size: int) -> Iterator[tuple[list[str], list[sa.Row]]]:
    """Yield (column names, rows) batches of ``batch_size`` from a server-side cursor."""
    result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(query)
    names = list(result.keys())
    for part in result.partitions(batch_size):
        yield names, part


# --- MySQL/MariaDB rendering raw's COPY text itself -----------------------------------------------

@dataclass(frozen=True)
class MysqlColumn:
    """A column as ``information_schema.columns`` describes it."""

    name: str
    data_type: str  # varchar, int, datetime …
    charset: str | None  # for text columns


def mysql_columns(conn: sa.Connection, table: str, schema: str | None) -> list[MysqlColumn]:
    """The columns of ``table`` (in the connection's database unless ``schema``) in order."""
    rows = conn.exec_driver_sql(
        "select column_name, data_type, character_set_name from information_schema.columns"
        " where table_schema = coalesce(%s, database()) and table_name = %s order by ordinal_position",
        (schema, table)).fetchall()
    return [MysqlColumn(str(r[0]), str(r[1]).lower(), r[2] and str(r[2]).lower()) for r in rows]


_MY_TEXT = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}
_MY_INTEGER = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
_MY_BACKSLASH = "char(92 using utf8mb4)"  # spelled out: a literal '\\' depends on the server's sql_mode


def _my_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _my_iso(expr: str, separator: str) -> str:
    """A DATETIME/TIMESTAMP as Python's ``isoformat()`` (or ``str()``) writes it: micro-seconds only if any."""
    return (f"concat(date_format({expr}, '%Y-%m-%d{separator}%H:%i:%s'),"
            f" if(microsecond({expr}) = 0, '', date_format({expr}, '.%f')))")


def mysql_text(column: MysqlColumn, *, json_form: bool = False) -> str | None:
    """SQL rendering ``column`` as the platform writes that value as text, or None if it cannot.

    Text comes through unchanged (converted to utf8mb4), integers and decimals as written,
    dates and times as ``isoformat()`` (``json_form``: as ``str()``, which is what ``_extra``
    keeps). Floating-point, binary and spatial columns are left to Python (None).
    """
    name = _my_ident(column.name)
    kind = column.data_type
    if kind in _MY_TEXT:
        return f"convert({name} using utf8mb4)"
    if kind in _MY_INTEGER or kind == "decimal":
        return f"cast({name} as char)"
    if kind == "date":
        return f"date_format({name}, '%Y-%m-%d')"
    if kind in ("datetime", "timestamp"):
        return _my_iso(name, " " if json_form else "T")
    return None


def _my_copy_escape(expr: str) -> str:
    """COPY text escaping of ``expr`` (backslash, tab, newline, carriage return), NULL as ``\\N``."""
    b = _MY_BACKSLASH
    for code, letter in ((92, None), (9, "t"), (10, "n"), (13, "r")):
        replacement = f"concat({b}, {b})" if letter is None else f"concat({b}, '{letter}')"
        expr = f"replace({expr}, char({code} using utf8mb4), {replacement})"
    return f"coalesce({expr}, concat({b}, 'N'))"


def mysql_copy_select(table: str, schema: str | None, columns: Sequence[MysqlColumn], mapped: Sequence[str],
                      watermark: str, keys: Sequence[str], since: bool) -> str | None:
    """A SELECT whose rows are raw's COPY text (``_extra`` and the mapped fields), rendered by MySQL.

    Each row is ``(line, position)``, both binary so the driver hands over bytes without
    decoding: ``line`` is ``_extra<TAB>field…`` in COPY text form (the caller puts the row
    number in front), ``position`` the JSON array ``[watermark, key…]`` as the row path's
    cursor keeps them. Ordered by (watermark, keys); with ``since`` it takes one parameter,
    the stored watermark (``>=``). None when a column cannot be rendered exactly (floating
    point, binary): the caller reads rows instead.
    """
    by_name = {c.name: c for c in columns}
    extras = [c for c in columns if c.name not in mapped]
    parts = []
    if extras:
        pairs = []
        for column in extras:
            text = mysql_text(column, json_form=True)
            if text is None:
                return None
            value = _my_ident(column.name) if column.data_type in _MY_INTEGER else text
            pairs.append(f"'{column.name.replace(chr(39), chr(39) * 2)}', {value}")
        parts.append(_my_copy_escape(f"json_object({', '.join(pairs)})"))
    else:
        parts.append(f"concat({_MY_BACKSLASH}, 'N')")
    for name in mapped:
        text = mysql_text(by_name[name])
        if text is None:
            return None
        parts.append(_my_copy_escape(text))
    position = []
    for name in (watermark, *keys):
        column = by_name[name]
        text = mysql_text(column)
        if text is None:
            return None
        position.append(_my_ident(name) if column.data_type in _MY_INTEGER else text)
    line = ", char(9 using utf8mb4), ".join(parts)
    source = f"{_my_ident(schema)}.{_my_ident(table)}" if schema else _my_ident(table)
    order = ", ".join(_my_ident(n) for n in (watermark, *keys))
    query = (f"select cast(concat({line}) as binary), cast(json_array({', '.join(position)}) as binary)"
             f" from {source} where {_my_ident(watermark)} is not null")
    if since:  # the driver formats parameters with %, so the date formats' % are doubled
        query = query.replace("%", "%%") + f" and {_my_ident(watermark)} >= %s"
    return f"{query} order by {order}"


# --- text in a wrongly declared encoding --------------------------------------------------------

def _latin1_bytes(value: str) -> bytes | None:
    """The bytes a latin1 column held, recovered from the text the driver decoded.

    MySQL's ``latin1`` is really cp1252 (0x80-0x9F are €, ‚ …), PostgreSQL's is ISO 8859-1, so
    both mappings are undone; a character neither can produce means the text was not latin1.
    """
    out = bytearray()
    for ch in value:
        code = ord(ch)
        if code < 0x100:
            out.append(code)
            continue
        try:
            out += ch.encode("cp1252")
        except UnicodeEncodeError:
            return None
    return bytes(out)


def gbk_mojibake(value: str) -> str | None:
    """The Chinese text hidden in ``value`` if it is GBK bytes read as latin1, else None.

    GBK bytes in a column declared latin1 come back as accented Latin garbage (``ÐÐÕþ´¦·£``).
    Encoded back to latin1 they are valid GBK with at least one two-byte character; genuine
    Latin text (``café``) almost never is, because a GBK lead byte needs a trail byte.
    """
    if value.isascii() or max(value) > "\u2122":  # real CJK text, or pure ASCII: nothing to undo
        return None
    raw = _latin1_bytes(value)
    if raw is None:
        return None
    try:
        decoded = raw.decode("gbk")
    except UnicodeDecodeError:
        return None
    # Latin text can decode as GBK by accident ("Müller": ü + l is a rare GBK-extension
    # character); real Chinese is mostly in the GB2312 core, so require its characters to dominate.
    common = rare = 0
    for ch in decoded:
        if ch.isascii():
            continue
        try:
            ch.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            rare += 1
    return decoded if common and common >= rare else None
