"""One source's daily steps — collect, validate, publish, feedback — each idempotent and driven by the ledger.

Steps read what to do from ``ops.loads`` rather than from what an earlier step returned, so a
step run twice, or after a crash, picks up exactly the batches still waiting for it.
"""

from __future__ import annotations

import logging
from datetime import date

from huiju.channels import CollectContext, ConnectionInfo, collector
from huiju.feedback import build_feedback, pending_feedback
from huiju.landing import LandResult
from huiju.ledger import loads_with_status
from huiju.monitoring.ledger import record_source
from huiju.registry import Registry, load_registry
from huiju.validation import ValidationResult, publish_load, validate_load
from huiju.warehouse import connect

log = logging.getLogger(__name__)


class CollectionError(RuntimeError):
    """Some delivered batches could not be landed; each is recorded as failed in the ledger."""


def collect(source_id: str, data_date: date | None = None, registry: Registry | None = None,
            connection: ConnectionInfo | None = None) -> list[LandResult]:
    """Fetch and land what is new for a source through its channel; raise after all were tried if any failed.

    ``connection`` is the source's Airflow Connection, resolved by the caller.
    """
    registry = registry or load_registry()
    source = registry.source(source_id)
    with connect(role="landing") as conn:
        ctx = CollectContext(registry=registry, source=source, conn=conn, data_date=data_date, connection=connection)
        results = collector(source.channel)(ctx)
    failed = [r for r in results if r.outcome == "failed"]
    if failed:
        raise CollectionError("; ".join(r.error or r.reference for r in failed))
    return results


def validate_pending(source_id: str, registry: Registry | None = None) -> list[ValidationResult]:
    """Validate the source's batches that are landed but not yet validated."""
    registry = registry or load_registry()
    with connect(role="validation") as conn:
        results = [validate_load(conn, registry, load_id) for load_id in loads_with_status(conn, source_id, "received")]
    if results:
        record_source(registry, source_id)  # the submission ledger (监控) sees the batches at once
    return results


def publish_validated(source_id: str) -> list[str]:
    """Publish the source's validated batches; return the ids published now."""
    with connect(role="validation") as conn:
        return [load_id for load_id in loads_with_status(conn, source_id, "validated") if publish_load(conn, load_id)]


def send_feedback(source_id: str, registry: Registry | None = None,
                  connection: ConnectionInfo | None = None) -> list[str]:
    """Write and deliver the feedback workbook (问题数据反馈) of each batch that has problem rows and none yet.

    ``connection`` is the source's Airflow Connection: an SFTP source gets its workbooks uploaded
    into ``feedback_dir`` on its server; without one they go by e-mail (see :mod:`huiju.feedback`).
    """
    registry = registry or load_registry()
    source = registry.source(source_id)
    with connect(role="validation") as conn:
        pending = pending_feedback(conn, source_id)
        if not pending:
            return []
        if source.channel == "sftp" and connection is not None:
            # why: asyncssh (and its cryptography) is loaded only for the sources that use SFTP
            from huiju_connectors.sftp import upload_file

            from huiju.channels.sftp import open_source

            server = open_source(source.channel_settings, connection)
            try:
                written = [build_feedback(conn, registry, load_id,
                                          upload=lambda path: upload_file(server, path, source.feedback_dir))
                           for load_id in pending]
            finally:
                server.close()
        else:
            written = [build_feedback(conn, registry, load_id) for load_id in pending]
    record_source(registry, source_id)  # feedback sent: the ledger's feedback columns
    return [str(result.path) for result in written if result is not None]
