"""The REST channel: a department's paged JSON interface, read page by page into the ledger.

Configuration (the source's ``rest:`` block, :class:`huiju.channel_settings.RestSettings`) says *what* to call: path,
pagination, where the records are in the body, incremental parameters, which kind of
authentication, rate limit, CA bundle and the schema-drift policy. The source's Airflow
Connection says *where and who*: the base URL (``extra.base_url``, else
``<scheme>://host:port`` with the scheme from ``extra.scheme`` or the Connection's schema,
``https`` by default) and the credentials (``login``/``password``, or ``extra``).

Paging, the cursor, landing, row numbers and schema drift are the SOAP channel's too; they
are described in :mod:`huiju.channels.webservice`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from huiju_connectors.http_auth import BearerAuth, HmacAuth, HmacHeaders, OAuth2ClientCredentials
from huiju_connectors.rest import Caps, Page, Pagination, RestSource, fetch_pages, page_records
from huiju_connectors.retry import RetryPolicy

from huiju.channel_settings import RestSettings
from huiju.channels.connection import base_url, ca_file, secret
from huiju.channels.webservice import expected_fields, incremental_of, land_pages
from huiju.ledger import get_cursor

if TYPE_CHECKING:
    from huiju.channels import CollectContext, ConnectionInfo
    from huiju.landing import LandResult
    from huiju.registry import Source


# --------------------------------------------------------------------------------------------
# REST
# --------------------------------------------------------------------------------------------


def _auth(settings: RestSettings, connection: ConnectionInfo, url: str) -> Any:
    if settings.auth == "token":
        return BearerAuth(secret(connection, "token", connection.password))
    if settings.auth == "hmac":
        return HmacAuth(secret(connection, "app_key", connection.login),
                        secret(connection, "app_secret", connection.password),
                        headers=HmacHeaders(**settings.hmac_headers.model_dump()), algorithm=settings.signature)
    if settings.auth == "oauth2":
        token_url = settings.token_url or ""
        if "://" not in token_url:
            token_url = url + "/" + token_url.lstrip("/")
        return OAuth2ClientCredentials(token_url, secret(connection, "client_id", connection.login),
                                       secret(connection, "client_secret", connection.password), scope=settings.scope)
    return None


def rest_source(ctx: CollectContext) -> tuple[Any, Any]:
    """The connector's ``RestSource`` and auth for this run, from settings and the Connection."""
    settings: RestSettings = ctx.settings
    source = ctx.source
    url = base_url(ctx.connection, source.id)
    assert ctx.connection is not None  # base_url raised otherwise
    incremental = incremental_of(settings.incremental)
    rest = RestSource(
        base_url=url, path=settings.path, records_path=settings.records_path,
        pagination=Pagination(**settings.pagination.model_dump()), page_size=settings.page_size,
        params=dict(settings.params), incremental=incremental, ok_path=settings.ok_path,
        ok_values=tuple(settings.ok_values), rate_limit=settings.rate_limit, burst=settings.burst,
        connect_timeout=settings.connect_timeout, read_timeout=settings.timeout,
        ca_bundle=ca_file(settings.ca_file, ctx.connection),
        retry=RetryPolicy(attempts=settings.attempts), name=source.id, caps=Caps(**settings.caps),
    )
    return rest, _auth(settings, ctx.connection, url)


def archived_page_records(source: Source, manifest: dict, payload: bytes) -> list[dict[str, Any]]:
    """The records an archived page (its body as received) landed, as :func:`collect` first decoded them: the
    list at the ``records_path`` its replay manifest names, the records it kept (replay; nothing is sent)."""
    kept = tuple(manifest["kept"]) if manifest.get("kept") is not None else None
    page = Page(manifest["reference"], [], {}, payload, fetched_count=manifest["fetched"], in_body=True, kept=kept)
    return page_records(page, manifest["records_path"])


def collect(ctx: CollectContext) -> list[LandResult]:
    """Fetch the source's new pages from its REST interface and land each with its cursor."""
    settings: RestSettings = ctx.settings
    rest, auth = rest_source(ctx)
    cursor = get_cursor(ctx.conn, ctx.source.id)
    ctx.conn.commit()  # no transaction left open while pages are fetched
    return land_pages(
        ctx, fetch_pages(rest, auth, cursor, whole_records=False), start_cursor=cursor, drift=settings.drift,
        expected_fields=expected_fields(ctx.source.columns, settings.incremental, settings.known_fields),
        records_path=settings.records_path,
    )
