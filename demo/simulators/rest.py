"""A department's REST/JSON gateway for the demo, serving a source's 行政处罚 records for a day."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from huiju_connectors.rest import Pagination
from huiju_demo.generate import generate_records
from huiju_demo.rest_gateway import RestGateway
from huiju_demo.simulators import SimulatedSource
from huiju_demo.webservice import stamped

from huiju.registry import Registry, Source


def gateway_for(source: Source, records: list[dict], *, secret: str, app_key: str | None = None) -> RestGateway:
    """A gateway shaped by the source's ``rest:`` settings (path, paging, incremental, auth and signature)."""
    settings = source.channel_settings
    incremental = settings.incremental
    return RestGateway(
        records=records, path=settings.path, records_path=settings.records_path,
        pagination=Pagination(**settings.pagination.model_dump()),
        since_param=incremental.since_param if incremental else None,
        updated_field=incremental.updated_at_field if incremental else None,
        auth=settings.auth if settings.auth in ("hmac", "token") else "none", algorithm=settings.signature,
        app_key=app_key or f"huiju-{source.id}", secret=secret, max_page_size=max(1000, settings.page_size),
    )


def connection_for(gateway: RestGateway) -> dict:
    """The Airflow Connection (JSON form) that reaches ``gateway`` with its credentials."""
    host, port = gateway.url.removeprefix("http://").split(":")
    login = gateway.app_key if gateway.auth == "hmac" else None
    return {"conn_type": "http", "host": host, "port": int(port), "login": login, "password": gateway.secret,
            "extra": {"scheme": "http"}}


@contextmanager
def simulate(registry: Registry, source: Source, day: date, rows: int, workdir: Path) -> Iterator[SimulatedSource]:
    """Serve ``source``'s demo records for ``day`` from a gateway on loopback until the block ends."""
    if source.connection is None:
        raise ValueError(f"{source.id}: a REST source needs `connection:` (the Airflow Connection id)")
    records, submission = generate_records(registry, source, day, rows=rows)
    incremental = source.channel_settings.incremental
    served = stamped(records, incremental.updated_at_field if incremental else None, day)
    gateway = gateway_for(source, served, secret=secrets.token_urlsafe(24))
    with gateway.running():
        yield SimulatedSource(submission, source.connection, connection_for(gateway))
