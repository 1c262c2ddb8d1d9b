"""A department's public website for the demo, publishing a source's 行政处罚公示 list for a day."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from huiju_demo.generate import generate_records
from huiju_demo.simulators import SimulatedSource
from huiju_demo.web_site import ListSite

from huiju.registry import Registry, Source

#: Records per list page, as the department's CMS lays them out.
PAGE_SIZE = 20


def site_for(source: Source, records: list[dict], *, page_size: int = PAGE_SIZE) -> ListSite:
    """The department's site shaped by the source's ``web:`` settings (its list's folder), in GB2312 like many."""
    folder = source.channel_settings.path.rsplit("/", 1)[0] + "/"
    return ListSite(records=records, headers=list(source.columns), list_path=folder, page_size=page_size,
                    encoding="gb18030", title=source.title)


def connection_for(site: ListSite) -> dict:
    """The Airflow Connection (JSON form) that reaches ``site``."""
    host, port = site.url.removeprefix("http://").split(":")
    return {"conn_type": "http", "host": host, "port": int(port), "extra": {"scheme": "http"}}


@contextmanager
def simulate(registry: Registry, source: Source, day: date, rows: int, workdir: Path) -> Iterator[SimulatedSource]:
    """Serve ``source``'s demo records for ``day`` from a site on loopback until the block ends."""
    if source.connection is None:
        raise ValueError(f"{source.id}: a web source needs `connection:` (the Airflow Connection id)")
    records, submission = generate_records(registry, source, day, rows=rows)
    site = site_for(source, records)
    with site.running():
        yield SimulatedSource(submission, source.connection, connection_for(site))
