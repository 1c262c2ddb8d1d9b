"""The SOAP channel: a department's WebService (WSDL vendored under ``config/wsdl/``), paged.

The WSDL is a file in the repository, never fetched at run time; the endpoint comes from the
source's Airflow Connection (``extra.base_url`` or scheme://host:port, plus ``endpoint_path``),
never from the ``soap:address`` in the WSDL. With ``username_token: true`` the Connection's
login and password go in a WS-Security UsernameToken (``password_digest`` for
PasswordDigest). Paging, the cursor, landing and schema drift work exactly as in the REST
channel (:func:`huiju.channels.webservice.land_pages`): the same engine drives both.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huiju_connectors.rest import Caps
from huiju_connectors.retry import RetryPolicy
from huiju_connectors.soap import DateWindow, SoapCredentials, SoapSource, fetch_soap_pages, reply_records

from huiju.channel_settings import SoapSettings
from huiju.channels.connection import base_url, ca_file, config_path, secret
from huiju.channels.webservice import expected_fields, incremental_of, kept_records, land_pages
from huiju.ledger import get_cursor

if TYPE_CHECKING:
    from huiju.channels import CollectContext
    from huiju.landing import LandResult
    from huiju.registry import Source


def soap_source(ctx: CollectContext) -> tuple[Any, Any]:
    """The connector's ``SoapSource`` and credentials for this run, from settings and the Connection."""
    settings: SoapSettings = ctx.settings
    source = ctx.source
    endpoint = base_url(ctx.connection, source.id) + "/" + settings.endpoint_path.lstrip("/")
    assert ctx.connection is not None  # base_url raised otherwise
    wsdl = Path(config_path(settings.wsdl))
    if not wsdl.is_file():
        raise FileNotFoundError(f"{source.id}: soap.wsdl: {wsdl} does not exist; vendor the department's WSDL "
                                "there (it is never fetched at run time)")
    incremental = incremental_of(settings.incremental)
    soap = SoapSource(
        wsdl_path=str(wsdl), endpoint=endpoint, operation=settings.operation, records_path=settings.records_path,
        page_param=settings.page_param, size_param=settings.size_param, first_page=settings.first_page,
        page_size=settings.page_size, params=dict(settings.params), incremental=incremental,
        service_name=settings.service_name, port_name=settings.port_name,
        business_fault_codes=settings.business_fault_codes, retry_fault_codes=settings.retry_fault_codes,
        connect_timeout=settings.connect_timeout, read_timeout=settings.timeout,
        ca_bundle=ca_file(settings.ca_file, ctx.connection),
        retry=RetryPolicy(attempts=settings.attempts), name=source.id, caps=Caps(**settings.caps),
        window=DateWindow(**{**settings.window.model_dump(), "start": settings.window.start.isoformat()})
        if settings.window is not None else None,
    )
    credentials = None
    if settings.username_token:
        credentials = SoapCredentials(secret(ctx.connection, "username", ctx.connection.login),
                                      secret(ctx.connection, "password", ctx.connection.password),
                                      use_digest=settings.password_digest)
    return soap, credentials


def archived_page_records(source: Source, manifest: dict, payload: bytes) -> list[dict[str, Any]]:
    """The records an archived page (its reply as received) landed, as :func:`collect` first decoded them: with
    the source's vendored WSDL and the operation and records' path its replay manifest names (replay; nothing
    is sent)."""
    settings: SoapSettings = source.channel_settings
    soap = SoapSource(wsdl_path=config_path(settings.wsdl), endpoint="http://127.0.0.1/", name=source.id,
                      operation=manifest["operation"], records_path=manifest["records_path"],
                      service_name=settings.service_name, port_name=settings.port_name)
    return kept_records(reply_records(soap, payload), manifest)


def collect(ctx: CollectContext) -> list[LandResult]:
    """Call the source's SOAP operation page by page and land each page with its cursor."""
    settings: SoapSettings = ctx.settings
    soap, credentials = soap_source(ctx)
    cursor = get_cursor(ctx.conn, ctx.source.id)
    ctx.conn.commit()  # no transaction left open while pages are fetched
    # Date windows: the run for day D reads every window closed by the end of D.
    today = ctx.data_date + timedelta(days=1) if ctx.data_date is not None else None
    return land_pages(
        ctx, fetch_soap_pages(soap, credentials, cursor, today=today), start_cursor=cursor, drift=settings.drift,
        expected_fields=expected_fields(ctx.source.columns, settings.incremental, settings.known_fields),
    )
