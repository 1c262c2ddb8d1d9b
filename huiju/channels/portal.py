"""The portal channel: what a department uploads (Excel文件上传) or enters by hand (人工录入) in its web portal.

The departments' portal (package ``huiju_portal``, a web server of its own) lands each upload
and each manual entry as it arrives, through the same landing, ledger, archive, validation and
feedback as every other channel, and shows the department the verdict at once. This module
holds only what the core needs to know about such a source: its ``portal:`` settings block,
validated with the rest of ``config/``.

There is nothing to fetch, so :func:`collect` lands nothing. The source's ingest DAG still
runs its other steps, which read the ledger: it publishes what the portal validated (its
publish task updates the dataset's Asset, which starts the warehouse build) and validates or
feeds back anything a portal request left half-way (a server stopped between landing and
validation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from huiju.channels import CollectContext
    from huiju.landing import LandResult


class Settings(BaseModel):
    """The ``portal:`` block of a source: which ways in the portal offers, and their limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upload: bool = True  # Excel文件上传 with the source's template
    manual_entry: bool = True  # 人工录入: a form generated from the dataset's fields
    max_upload_mb: float = Field(default=20, gt=0, le=500)
    max_entry_records: int = Field(default=50, ge=1, le=500)  # records in one manual entry

    @model_validator(mode="after")
    def _some_way_in(self) -> Settings:
        if not (self.upload or self.manual_entry):
            raise ValueError("a portal source needs upload or manual_entry (or both)")
        return self

    @property
    def max_upload_bytes(self) -> int:
        """The upload size cap in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)


def collect(ctx: CollectContext) -> list[LandResult]:
    """Nothing to fetch: the portal lands uploads and entries as departments make them."""
    return []
