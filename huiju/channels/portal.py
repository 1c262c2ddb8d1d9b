"""The portal channel: what a department uploads (Excel文件上传) or enters by hand (人工录入) in its web portal.

The departments' portal (package ``huiju_portal``, a web server of its own) lands each upload
and each manual entry as it arrives, through the same landing, ledger, archive, validation and
feedback as every other channel, and shows the department the verdict at once. The source's
``portal:`` settings block is :class:`huiju.channel_settings.PortalSettings`.

There is nothing to fetch, so :func:`collect` lands nothing. The source's ingest DAG still
runs its other steps, which read the ledger: it publishes what the portal validated (its
publish task updates the dataset's Asset, which starts the warehouse build) and validates or
feeds back anything a portal request left half-way (a server stopped between landing and
validation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from huiju.channels import CollectContext
    from huiju.landing import LandResult


def collect(ctx: CollectContext) -> list[LandResult]:
    """Nothing to fetch: the portal lands uploads and entries as departments make them."""
    return []
