"""The REST channel: a department's paged JSON interface, read page by page into the ledger.

Configuration (the source's ``rest:`` block, :class:`Settings`) says *what* to call: path,
pagination, where the records are in the body, incremental parameters, which kind of
authentication, rate limit, CA bundle and the schema-drift policy. The source's Airflow
Connection says *where and who*: the base URL (``extra.base_url``, else
``<scheme>://host:port`` with the scheme from ``extra.scheme`` or the Connection's schema,
``https`` by default) and the credentials (``login``/``password``, or ``extra``).

Paging, the cursor, landing, row numbers and schema drift are the SOAP channel's too; they
are described in :mod:`huiju.channels._webservice`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from huiju.channels._webservice import (
    Block,
    IncrementalSettings,
    base_url,
    ca_bundle,
    expected_fields,
    land_pages,
    secret,
)

if TYPE_CHECKING:
    from huiju.channels import CollectContext, ConnectionInfo
    from huiju.landing import LandResult


class PaginationSettings(Block):
    """How the interface pages (see ``huiju_connectors.rest.Pagination``)."""

    kind: Literal["page", "offset", "cursor"] = "page"
    page_param: str = "page"
    size_param: str = "size"
    first_page: int = Field(default=1, ge=0)
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    next_cursor_path: str = "next_cursor"


class HmacHeaderSettings(Block):
    """Header names of an HMAC-signing gateway, when they differ from the common ones."""

    app_key: str = "X-App-Key"
    timestamp: str = "X-Timestamp"
    nonce: str = "X-Nonce"
    signature: str = "X-Signature"


class Settings(Block):
    """The ``rest:`` block of a source.

    ``auth``: ``token`` (bearer token: the Connection's password, or ``extra.token``),
    ``hmac`` (app key = login, app secret = password), ``oauth2`` (client credentials:
    client id = login, secret = password, token endpoint ``token_url`` — a path on the same
    host or a full URL), ``none``. ``ca_bundle``: a PEM file (relative to ``config/``) with the
    government CA that signed the department's certificate; TLS is always verified.
    ``known_fields``: fields the interface sends that are not mapped in ``columns`` and are not
    drift (they are kept in ``_extra``); the incremental fields are known automatically.
    """

    path: str = Field(min_length=1)
    records_path: str = ""
    pagination: PaginationSettings = PaginationSettings()
    page_size: int = Field(default=100, ge=1, le=10_000)
    params: dict[str, str] = Field(default_factory=dict)
    incremental: IncrementalSettings | None = None
    auth: Literal["token", "hmac", "oauth2", "none"] = "none"
    hmac_headers: HmacHeaderSettings = HmacHeaderSettings()
    token_url: str | None = None
    scope: str | None = None
    ok_path: str | None = None
    ok_values: tuple[int | str, ...] = (0, "0", 200, "200")
    rate_limit: float | None = Field(default=None, gt=0)
    burst: int = Field(default=1, ge=1)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    ca_bundle: str | None = None
    drift: Literal["warn", "hold"] = "warn"
    known_fields: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _oauth2_needs_token_url(self) -> Settings:
        if self.auth == "oauth2" and not self.token_url:
            raise ValueError("auth: oauth2 needs token_url (the token endpoint)")
        return self


# --------------------------------------------------------------------------------------------
# REST
# --------------------------------------------------------------------------------------------


def _auth(settings: Settings, connection: ConnectionInfo, url: str) -> Any:
    from huiju_connectors.http_auth import BearerAuth, HmacAuth, HmacHeaders, OAuth2ClientCredentials

    if settings.auth == "token":
        return BearerAuth(secret(connection, "token", connection.password))
    if settings.auth == "hmac":
        return HmacAuth(secret(connection, "app_key", connection.login),
                        secret(connection, "app_secret", connection.password),
                        headers=HmacHeaders(**settings.hmac_headers.model_dump()))
    if settings.auth == "oauth2":
        token_url = settings.token_url or ""
        if "://" not in token_url:
            token_url = url + "/" + token_url.lstrip("/")
        return OAuth2ClientCredentials(token_url, secret(connection, "client_id", connection.login),
                                       secret(connection, "client_secret", connection.password), scope=settings.scope)
    return None


def rest_source(ctx: CollectContext) -> tuple[Any, Any]:
    """The connector's ``RestSource`` and auth for this run, from settings and the Connection."""
    from huiju_connectors.rest import Pagination, RestSource, RetryPolicy

    settings: Settings = ctx.settings
    source = ctx.source
    url = base_url(ctx.connection, source.id)
    assert ctx.connection is not None  # base_url raised otherwise
    incremental = settings.incremental.connector() if settings.incremental is not None else None
    rest = RestSource(
        base_url=url, path=settings.path, records_path=settings.records_path,
        pagination=Pagination(**settings.pagination.model_dump()), page_size=settings.page_size,
        params=dict(settings.params), incremental=incremental, ok_path=settings.ok_path,
        ok_values=tuple(settings.ok_values), rate_limit=settings.rate_limit, burst=settings.burst,
        connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
        ca_bundle=ca_bundle(settings.ca_bundle, ctx.connection),
        retry=RetryPolicy(max_attempts=settings.max_attempts), name=source.id,
    )
    return rest, _auth(settings, ctx.connection, url)


def collect(ctx: CollectContext) -> list[LandResult]:
    """Fetch the source's new pages from its REST interface and land each with its cursor."""
    from huiju_connectors.rest import fetch_pages

    from huiju.ledger import get_cursor

    settings: Settings = ctx.settings
    rest, auth = rest_source(ctx)
    cursor = get_cursor(ctx.conn, ctx.source.id)
    ctx.conn.commit()  # no transaction left open while pages are fetched
    return land_pages(
        ctx, fetch_pages(rest, auth, cursor, whole_records=False), start_cursor=cursor, drift=settings.drift,
        expected_fields=expected_fields(ctx.source.columns, settings.incremental, settings.known_fields),
        records_path=settings.records_path,
    )
