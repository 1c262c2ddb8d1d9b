"""MySQL/MariaDB rendering raw's COPY text itself, so no value is converted or decoded in Python."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import mysql as mysql_dialect


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


#: SQLAlchemy's MySQL dialect quotes identifiers (backticks, doubled inside): never quoted by hand here.
_MY_PREPARER = mysql_dialect.dialect().identifier_preparer


def _my_ident(name: str) -> str:
    return _MY_PREPARER.quote_identifier(name)


def _my_text_literal(value: str) -> str:
    """A text literal that needs no quoting at all: its UTF-8 bytes in hex, converted to utf8mb4.

    A quoted literal depends on the server's sql_mode (with NO_BACKSLASH_ESCAPES a backslash
    is an ordinary character, without it an escape), so escaping written for one mode is an
    injection in the other; a hex literal means the same bytes in every mode.
    """
    return f"convert(0x{value.encode('utf-8').hex()} using utf8mb4)" if value else "''"


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
            pairs.append(f"{_my_text_literal(column.name)}, {value}")
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
