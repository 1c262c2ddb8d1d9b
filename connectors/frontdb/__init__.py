"""Front-end databases (前置库): reading a department's table or view through SQLAlchemy 2.

Dialects: PostgreSQL (psycopg 3), MySQL/MariaDB (PyMySQL) and Oracle (python-oracledb in thin
mode, so no Oracle client is installed anywhere). The core passes credentials in; nothing here
reads configuration or Airflow.

By concern: :mod:`.engine` connects (endpoint, TLS, errors a steward can act on);
:mod:`.tables` describes the table and reads it through SQLAlchemy Core (every dialect, rows
streamed from a server-side cursor); :mod:`.postgres` and :mod:`.mysql` let a PostgreSQL or
MySQL/MariaDB source render raw's COPY text itself, so the fast paths pass no row through
Python; :mod:`.encoding` recognises GBK text hidden in a column declared latin1.
"""

from __future__ import annotations

from .encoding import gbk_mojibake
from .engine import (
    DEFAULT_PORTS,
    DIALECTS,
    Endpoint,
    FrontDbConfigError,
    FrontDbError,
    Tls,
    connect_args,
    create_source_engine,
    engine_url,
    map_error,
)
from .mysql import MysqlColumn, mysql_columns, mysql_copy_select, mysql_text
from .postgres import WatermarkCopy, copy_out_in_thread
from .tables import (
    SourceColumn,
    after_condition,
    describe_table,
    flag_query,
    mark_rows,
    snapshot_query,
    source_table,
    stream,
    watermark_query,
)

__all__ = [
    "DEFAULT_PORTS",
    "DIALECTS",
    "Endpoint",
    "FrontDbConfigError",
    "FrontDbError",
    "MysqlColumn",
    "SourceColumn",
    "Tls",
    "WatermarkCopy",
    "after_condition",
    "connect_args",
    "copy_out_in_thread",
    "create_source_engine",
    "describe_table",
    "engine_url",
    "flag_query",
    "gbk_mojibake",
    "map_error",
    "mark_rows",
    "mysql_columns",
    "mysql_copy_select",
    "mysql_text",
    "snapshot_query",
    "source_table",
    "stream",
    "watermark_query",
]
