"""A department's SOAP WebService for the demo, answering the operation of the source's vendored WSDL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from huiju_connectors.rest import Pagination
from huiju_demo.generate import generate_records
from huiju_demo.simulators import SimulatedSource
from huiju_demo.soap_service import SoapService
from huiju_demo.webservice import stamped

from huiju.registry import Registry, Source


def wsdl_namespace(wsdl: Path) -> str:
    """The WSDL's target namespace (the service answers in it)."""
    import defusedxml.ElementTree as DET

    return DET.parse(wsdl, forbid_dtd=True).getroot().get("targetNamespace") or ""


def service_for(source: Source, records: list[dict], *, username: str | None, password: str | None) -> SoapService:
    """A service shaped by the source's ``soap:`` settings (WSDL namespace, operation, paging, token)."""
    from huiju.channels.connection import config_path

    settings = source.channel_settings
    incremental = settings.incremental
    return SoapService(
        records=records, namespace=wsdl_namespace(Path(config_path(settings.wsdl))), operation=settings.operation,
        records_path=settings.records_path, path="/" + settings.endpoint_path.lstrip("/"),
        pagination=Pagination(page_param=settings.page_param, size_param=settings.size_param),
        since_param=incremental.since_param if incremental else None,
        updated_field=incremental.updated_at_field if incremental else None,
        username=username, password=password, max_page_size=max(1000, settings.page_size),
    )


def connection_for(service: SoapService) -> dict:
    """The Airflow Connection (JSON form) that reaches ``service`` with its credentials."""
    host, port = service.url.removeprefix("http://").split("/", 1)[0].split(":")
    return {"conn_type": "http", "host": host, "port": int(port), "login": service.username,
            "password": service.password, "extra": {"scheme": "http"}}


@contextmanager
def simulate(registry: Registry, source: Source, day: date, rows: int, workdir: Path) -> Iterator[SimulatedSource]:
    """Serve ``source``'s demo records for ``day`` from a SOAP service on loopback until the block ends."""
    if source.connection is None:
        raise ValueError(f"{source.id}: a SOAP source needs `connection:` (the Airflow Connection id)")
    records, submission = generate_records(registry, source, day, rows=rows)
    settings = source.channel_settings
    served = stamped(records, settings.incremental.updated_at_field if settings.incremental else None, day)
    username, password = ("huiju", secrets.token_urlsafe(24)) if settings.username_token else (None, None)
    service = service_for(source, served, username=username, password=password)
    with service.running():
        yield SimulatedSource(submission, source.connection, connection_for(service))
