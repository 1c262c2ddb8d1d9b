"""What the front-end database channel's modes share: the endpoint, values as the cursor keeps them, schema checks."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import psycopg
from huiju_connectors.frontdb import Endpoint, FrontDbConfigError, SourceColumn, Tls, gbk_mojibake
from psycopg.types.json import Jsonb

from huiju.archive import records_text, rows_archive
from huiju.channel_settings import FrontDbSettings
from huiju.landing import LandResult, record_failed
from huiju.ledger import get_cursor, make_content_id
from huiju.rules import RULES

if TYPE_CHECKING:
    from huiju.channels import CollectContext

log = logging.getLogger("huiju.channels.frontdb")


def endpoint_of(ctx: CollectContext) -> Endpoint:
    """The connector's endpoint from the source's resolved Connection (schema = database)."""
    settings: FrontDbSettings = ctx.settings
    info = ctx.connection
    if info is None:
        raise FrontDbConfigError(f"{ctx.source.id}: no Airflow Connection; set `connection:` in the source's config")
    extra = dict(info.extra or {})
    tls = settings.tls
    return Endpoint(dialect=settings.dialect, host=info.host, port=info.port, user=info.login, password=info.password,
                    database=info.schema,
                    tls=Tls(enabled=tls.enabled or bool(extra.get("tls")), verify=tls.verify,
                            ca_file=extra.get("ca_file", tls.ca_file), cert_file=tls.cert_file,
                            key_file=tls.key_file),
                    options={str(k): str(v) for k, v in (extra.get("options") or {}).items()},
                    timezone=settings.watermark.timezone if settings.watermark else "Asia/Shanghai")


def jsonable(value: Any) -> Any:
    """A key or watermark value as JSON that binds back to the same value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | float):
        return str(value)
    return str(value)


def watermark_value(value: Any, kind: str) -> Any:
    """A stored watermark back as the value to compare with (naive stays naive, aware stays aware)."""
    if value is None or kind == "integer":
        return value
    text = str(value)
    return dt.datetime.fromisoformat(text) if ("T" in text or ":" in text) else dt.date.fromisoformat(text)


def mojibake_reason(record: Mapping[str, object]) -> str | None:
    """A reason in Chinese if some text is GBK bytes read through a latin1 column, else None."""
    for name, value in record.items():
        # Cheap tests first: pure ASCII or real CJK text (beyond U+2122) cannot be latin1 mojibake.
        if type(value) is str and not value.isascii() and max(value) <= "\u2122" and gbk_mojibake(value):
            return RULES["columns"].reason("mojibake", field=name)
    return None


def where(ctx: CollectContext) -> str:
    """The source as messages name it: its id, dialect and table."""
    settings: FrontDbSettings = ctx.settings
    table = f"{settings.table_schema}.{settings.table}" if settings.table_schema else settings.table
    return f"{ctx.source.id} ({settings.dialect} {table})"


def batch_reference(settings: FrontDbSettings, what: str) -> str:
    """A batch's reference in the ledger: the table and ``what`` of it was read."""
    table = f"{settings.table_schema}.{settings.table}" if settings.table_schema else settings.table
    return f"{table} {what}"


def pair_text(values: list) -> str:
    """A (watermark, key…) pair as a reference shows it."""
    return "/".join(str(v) for v in values)


def check_schema(ctx: CollectContext, columns: list[SourceColumn]) -> tuple[list[str], str | None]:
    """(warnings, error): drift against the configuration and against the schema seen last time."""
    settings: FrontDbSettings = ctx.settings
    source = ctx.source
    names = [c.name for c in columns]
    if not columns:
        return [], f"{where(ctx)}: the table or view does not exist or is not visible to this account"
    missing_tech = [c for c in settings.technical_columns if c not in names]
    if missing_tech:
        return [], f"{where(ctx)}: column(s) the channel needs are missing: {', '.join(missing_tech)}"
    missing = [c for c in source.columns if c not in names]
    if missing:
        return [], (f"{where(ctx)}: mapped column(s) missing at the source: {', '.join(missing)}; the batch is "
                    "held until the department restores them or the source's columns are reconfigured")
    warnings = []
    known = set(source.columns) | set(settings.technical_columns)
    new = [c for c in names if c not in known]
    if new:
        warnings.append(f"new column(s) at the source, kept in _extra: {', '.join(new)}")
    conn = ctx.conn
    with conn.transaction():
        row = conn.execute("select columns from ops.frontdb_schemas where source_id = %s", (source.id,)).fetchone()
        seen = {c.name: c.type for c in columns}
        if row is not None:
            before: dict[str, str] = row[0]
            for name, kind in seen.items():
                if name in before and before[name] != kind:
                    warnings.append(f"column {name} changed type from {before[name]} to {kind}; "
                                    "values still land as text as received")
        conn.execute("insert into ops.frontdb_schemas (source_id, columns) values (%s, %s)"
                     " on conflict (source_id) do update set columns = excluded.columns, seen_at = now()",
                     (source.id, Jsonb(seen)))
    for warning in warnings:
        log.warning("%s: %s", where(ctx), warning)
    return warnings, None


def fail(ctx: CollectContext, message: str) -> LandResult:
    """Record a batch that cannot be read as ``failed`` in the ledger, with the reason."""
    settings: FrontDbSettings = ctx.settings
    return record_failed(ctx.conn, ctx.registry, ctx.source, reference=batch_reference(settings, "schema check"),
                         content_id=make_content_id(ctx.source.id, "frontdb-failed", message, str(ctx.data_date)),
                         error=message, data_date=ctx.data_date, archive_path="")


def read_cursor(conn: psycopg.Connection, source_id: str) -> dict | None:
    """The source's stored cursor, read in a transaction of its own."""
    with conn.transaction():  # closed at once: land_records must open a real transaction, not a savepoint
        return get_cursor(conn, source_id)



def records_payload(records: list[Mapping[str, Any]]) -> bytes:
    """A batch of records read from the source as its archived original: a compressed rows archive."""
    return rows_archive("records", records_text(records))
