"""The paging and watermark engine, independent of HTTP: REST and SOAP both drive it.

:func:`paginate` calls a source's ``fetch(since, position)`` page by page from a stored cursor
and yields each :class:`Page` with the cursor to store *with* it (see :mod:`huiju_connectors.rest`
for the contract, and :mod:`huiju_connectors.incremental` for the incremental guarantee).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from huiju_connectors.incremental import KeysAtWatermark, OutOfOrder, timestamp_order

from .body import json_path
from .errors import RestError

#: Version of the cursor JSON written by :func:`paginate`; older/unknown versions are refused.
CURSOR_VERSION = 1


@dataclass(frozen=True)
class Pagination:
    """How the source pages.

    * ``page``: ``page_param`` = page number (from ``first_page``), ``size_param`` = page size;
    * ``offset``: ``offset_param`` = records to skip, ``size_param`` = page size;
    * ``cursor``: ``cursor_param`` = the opaque token found at ``next_cursor_path`` in the
      previous response (absent/empty/null there = last page), ``size_param`` = page size.

    For ``page`` and ``offset`` a page with fewer records than the page size is the last.
    """

    kind: Literal["page", "offset", "cursor"] = "page"
    page_param: str = "page"
    size_param: str = "size"
    first_page: int = 1
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    next_cursor_path: str = "next_cursor"


@dataclass(frozen=True)
class Incremental:
    """Incremental reads by an updated-since filter (see the module docstring for the guarantee).

    ``since_param``: query parameter carrying the watermark (inclusive on the server side).
    ``updated_at_field``: JSON path of the record's last-modified timestamp.
    ``key_fields``: JSON paths of the record's business key (e.g. ``("id",)``).
    ``initial_since``: watermark for the very first run (``None``: no filter, full history).
    """

    since_param: str
    updated_at_field: str
    key_fields: tuple[str, ...]
    initial_since: str | None = None



@dataclass(frozen=True)
class Page:
    """One page as fetched, for the core to land.

    ``reference``: stable description of the request (same request, same reference), e.g.
    ``/api/persons?page=12&size=100&updated_since=2024-05-01T00:00:00``.
    ``records``: the new records, whole (no field dropped), duplicates already removed.
    ``next_cursor``: JSON-serialisable; store it in the same transaction as the records.
    ``raw_bytes``: the response body exactly as received.
    ``fetched_count``: records in the response before duplicates were dropped.
    A page may have no records (all duplicates, or the final empty page): land it anyway, so
    the cursor moves on.

    ``kept``: the positions, in the body's list, of the records the page lands (None: all of them);
    the others were landed before (an incremental source's records at the watermark). A replay of
    the archived body takes the same ones.
    ``in_body``: the connector left the records in ``raw_bytes`` (see ``whole_records`` in
    :func:`fetch_pages`): ``records`` is empty, and the page's records are those of the body's
    list at the positions in ``kept``; :func:`page_records` decodes them.
    """

    reference: str
    records: list[dict[str, Any]]
    next_cursor: dict[str, Any]
    raw_bytes: bytes
    fetched_count: int = 0
    content_type: str = "application/json"
    in_body: bool = False
    kept: tuple[int, ...] | None = None

    @property
    def record_count(self) -> int:
        """How many records the page lands (decoded or left in the body)."""
        if not self.in_body:
            return len(self.records)
        return self.fetched_count if self.kept is None else len(self.kept)

    @property
    def is_last(self) -> bool:
        """True when this page ends the run (the next run starts from the watermark)."""
        return self.next_cursor.get("position") is None



@dataclass(frozen=True)
class Fetched:
    """What one request returned, as the engine needs it (built by the REST or SOAP layer)."""

    records: Sequence[Mapping[str, Any]]  # dicts, but for records left in the body (see in_body)
    raw_bytes: bytes
    reference: str
    next_token: str | None = None  # cursor pagination: the server's token for the next page
    content_type: str = "application/json"
    #: The records were checked but left in the body: ``records`` holds, for each, only the
    #: fields the watermark needs (incremental sources; nothing otherwise).
    in_body: bool = False


#: ``fetch(since, position) -> Fetched``; position is ``{"page": n}``, ``{"offset": n}`` or
#: ``{"token": t}`` (``None`` token = first page).
FetchFn = Callable[[Any, dict[str, Any]], Fetched]


@dataclass(frozen=True)
class Caps:
    """What one run of a paged source may take at most; past a cap the run stops with an error naming it.

    ``max_pages``: pages per run (a gateway that ignores the page parameter, or a huge backlog,
    cannot run until the disk is full; the next run resumes from the stored cursor);
    ``max_page_bytes``: bytes of one answer, read with this limit rather than whole;
    ``max_page_records``: records in one answer. A page whose body repeats an earlier page of
    the same run, or a cursor token met before in the run, stops it too.
    """

    max_pages: int = 10_000
    max_page_bytes: int = 64 * 1024**2
    max_page_records: int = 100_000


def _first_position(pagination: Pagination) -> dict[str, Any]:
    if pagination.kind == "page":
        return {"page": pagination.first_page}
    if pagination.kind == "offset":
        return {"offset": 0}
    return {"token": None}


def _load_cursor(start_cursor: Mapping[str, Any] | None) -> dict[str, Any]:
    if not start_cursor:
        return {"v": CURSOR_VERSION, "position": None}
    cursor = json.loads(json.dumps(start_cursor))  # a private, plain-JSON copy
    if cursor.get("v") != CURSOR_VERSION:
        raise ValueError(f"unsupported cursor version {cursor.get('v')!r} (expected {CURSOR_VERSION})")
    return cursor


def paginate(
    fetch: FetchFn,
    pagination: Pagination,
    page_size: int,
    incremental: Incremental | None,
    start_cursor: Mapping[str, Any] | None,
    *,
    source_name: str = "",
    caps: Caps | None = None,
) -> Iterator[Page]:
    """Drive ``fetch`` page by page from ``start_cursor``, yielding :class:`Page` objects.

    This is the engine behind :func:`fetch_pages` and the SOAP connector; the guarantees are
    in the module docstring. The cursor it writes::

        {"v": 1,
         "position": null | {"page": n} | {"offset": n} | {"token": t, "since": s},
         "watermark": ..., "seen_keys": [[key...], ...]}   # incremental sources only

    ``position`` null means the last run completed and the next starts afresh (from the
    watermark for incremental sources, from the first page otherwise).
    """
    cursor = _load_cursor(start_cursor)
    position: dict[str, Any] | None = cursor.get("position")
    marks: KeysAtWatermark | None = None  # the incremental position: watermark and the keys landed at it
    if incremental is not None:
        watermark = cursor.get("watermark")
        marks = KeysAtWatermark(incremental.initial_since if watermark is None else watermark,
                                cursor.get("seen_keys", []), order=timestamp_order)

    if position is None:
        position = _first_position(pagination)
    elif pagination.kind == "cursor":
        position = dict(position)

    caps = caps or Caps()
    seen_bodies: dict[bytes, int] = {}  # digest of each page's body → its number in this run
    seen_tokens: set[str] = set()
    pages = 0
    while True:
        pages += 1
        if pages > caps.max_pages:
            raise RestError(f"{source_name}: more than max_pages ({caps.max_pages}) pages in one run; the run stops "
                            "here and the next one resumes (raise max_pages for this source if that is expected)")
        if pagination.kind == "cursor" and position.get("token") is not None:
            since = position.get("since")  # a server cursor is bound to the query that made it
        else:
            since = marks.watermark if marks is not None else None
        fetched = fetch(since, {k: v for k, v in position.items() if k != "since"})

        kept: list[int] | None = None  # positions of the records landed; None: all of them
        if incremental is not None and marks is not None:
            kept = _new_records(fetched, incremental, marks, source_name)
            if len(kept) == len(fetched.records):
                kept = None

        raw_count = len(fetched.records)
        if raw_count > caps.max_page_records:
            raise RestError(f"{source_name}: {fetched.reference}: {raw_count} records in one page, more than "
                            f"max_page_records ({caps.max_page_records})")
        if raw_count:
            # The same answer to the same query (an incremental run asks page 1 again once its
            # watermark moved: a different query, which may legitimately answer the same records).
            digest = hashlib.sha256(repr(since).encode() + b"\0" + bytes(fetched.raw_bytes)).digest()
            if digest in seen_bodies:
                raise RestError(f"{source_name}: {fetched.reference}: page {pages} repeats page {seen_bodies[digest]} "
                                "of this run word for word; the server seems to ignore the paging parameter")
            seen_bodies[digest] = pages
        if pagination.kind == "cursor" and fetched.next_token is not None:
            if fetched.next_token in seen_tokens:
                raise RestError(f"{source_name}: {fetched.reference}: the server sent a next-page token it had already "
                                "sent in this run; following it would loop")
            seen_tokens.add(fetched.next_token)
        next_position: dict[str, Any] | None
        if pagination.kind == "cursor":
            next_position = {"token": fetched.next_token, "since": since} if fetched.next_token else None
        elif raw_count < page_size:
            next_position = None
        elif marks is not None and marks.watermark is not None and (
            since is None or timestamp_order(marks.watermark) > timestamp_order(since)
        ):
            # The watermark advanced: ask again from the first page of ">= new watermark" rather
            # than the next page of the old query (rows updated meanwhile move to the end of
            # the old result set and would shift the pages under us).
            next_position = _first_position(pagination)
        elif pagination.kind == "page":
            next_position = {"page": position["page"] + 1}
        else:
            next_position = {"offset": position["offset"] + raw_count}

        next_cursor: dict[str, Any] = {"v": CURSOR_VERSION, "position": next_position}
        if marks is not None:
            next_cursor["watermark"] = marks.watermark
            next_cursor["seen_keys"] = sorted(marks.key_list(), key=json.dumps)
        records: list[dict[str, Any]] = []
        if not fetched.in_body:
            records = [*fetched.records] if kept is None else [fetched.records[i] for i in kept]
        yield Page(
            reference=fetched.reference,
            records=records,
            next_cursor=next_cursor,
            raw_bytes=fetched.raw_bytes,
            fetched_count=raw_count,
            content_type=fetched.content_type,
            in_body=fetched.in_body,
            kept=None if kept is None else tuple(kept),
        )
        if next_position is None:
            return
        position = next_position


def _new_records(fetched: Fetched, incremental: Incremental, marks: KeysAtWatermark, source_name: str) -> list[int]:
    """Positions of the records not landed before; ``marks`` moves past each (:mod:`huiju_connectors.incremental`)."""
    kept: list[int] = []
    for position, record in enumerate(fetched.records):
        try:
            stamp = json_path(record, incremental.updated_at_field)
            key = tuple(json_path(record, f) for f in incremental.key_fields)
            new = marks.admit(stamp, key)
        except OutOfOrder:
            raise RestError(
                f"{source_name or 'source'}: record {key!r} has {incremental.updated_at_field}="
                f"{stamp!r}, older than the watermark {marks.watermark!r}; the source must filter "
                f"'>= {incremental.since_param}' and order by {incremental.updated_at_field} ascending"
            ) from None
        except (KeyError, ValueError) as exc:
            raise RestError(
                f"{source_name or 'source'}: record at {fetched.reference} lacks a usable "
                f"{incremental.updated_at_field!r} or key {incremental.key_fields!r} ({exc})"
            ) from None
        if new:
            kept.append(position)  # landed before (page overlap, retry, or previous run) otherwise
    return kept
