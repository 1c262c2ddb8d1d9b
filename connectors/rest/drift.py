"""Schema drift: records whose top-level fields are no longer the ones a source is registered with."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .errors import SchemaDrift

log = logging.getLogger(__name__)


def check_drift(
    records: Sequence[Mapping[str, Any]],
    expected_fields: Sequence[str],
    policy: Literal["warn", "hold"] = "warn",
) -> list[str]:
    """Compare the records' top-level fields with the registered ones.

    *Added*: a field some record has that is not expected. *Removed*: an expected field no
    record in the batch has (an empty batch proves nothing, so it reports nothing). Records
    are never modified — an added field is landed like any other, so nothing is silently lost.

    Returns one warning per difference with policy ``warn``; raises :class:`SchemaDrift` with
    policy ``hold`` if there is any difference (the core then holds the batch for a steward).
    """
    if policy not in ("warn", "hold"):
        raise ValueError(f"unknown drift policy {policy!r} (use 'warn' or 'hold')")
    if not records:
        return []
    present: set[str] = set().union(*records)
    expected = set(expected_fields)
    added = sorted(present - expected)
    removed = sorted(expected - present)
    warnings = [f"new field {name!r} (not in the registered schema)" for name in added]
    warnings += [f"field {name!r} is missing from every record" for name in removed]
    if warnings and policy == "hold":
        raise SchemaDrift("schema drift: " + "; ".join(warnings), added=added, removed=removed)
    for message in warnings:
        log.warning("schema drift: %s", message)
    return warnings

