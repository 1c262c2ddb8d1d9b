"""What the REST and SOAP channels share: settings blocks, the Connection, and landing pages.

Both connectors yield :class:`huiju_connectors.rest.Page` objects from the same paging engine;
:func:`land_pages` lands them, so both channels give the same guarantees:

* a run starts from the source's stored cursor (``ops.cursors``). The cursor's contract is
  :mod:`huiju_connectors.rest`'s: a ``position`` resumes an interrupted run right after its
  last landed page; a null position means the last run finished, and the next one opens a new
  incremental window from the stored watermark (non-incremental sources read from page one
  again; identical pages are recognised as already landed);
* every page with records is landed with :func:`huiju.landing.land_record_batches` — records,
  payload (archived as received, in a pack with the pages landed beside it) and the page's
  cursor in one transaction, the load id derived from sha256(payload + reference), so a rerun
  or a crash never lands a page twice;
* a page without new records (the final empty page, or only records landed before) creates no
  ledger row: only its cursor is saved. It covers no data, so the cursor is still never ahead
  of landed data, and the ledger holds only batches someone can validate;
* pages are fetched and prepared ahead in a child process while earlier ones land; pages land in
  groups, one transaction and one archive pack per group (group commit, see :func:`land_pages`).
  The two processes share the work: the fetcher requests each page and hashes it; the REST
  connector checks a JSON body without decoding its records whole (each an object, the status
  and token where expected; only the fields the watermark needs are decoded) and leaves them in
  it, and the landing process decodes them once, straight into COPY text, checking them for
  drift on the way (:func:`_render_from_body`) — the fetcher, which with the department's
  server sets the pace, stays short, and no record is decoded twice. A body the check refuses,
  and every SOAP page, is decoded and checked by the fetcher as before;
* each page's fields are compared with the configured ones (:func:`check_drift`): with
  ``drift: warn`` differences are stored as the load's warnings (unknown fields are kept in
  ``_extra``: nothing is lost); with ``drift: hold`` the drifted page is recorded in the ledger
  as ``held`` with the reason, nothing of it reaches ``raw``, the cursor stays before it and the
  run ends without failing; once a steward updates the configuration, the next run lands it.

Row numbers continue through a run: a page's new records are numbered after every new record
the run received before them — across pages and across the fresh queries an advancing
watermark starts (records dropped as landed before take no number) — so a row number names
one record of the run, in the order the department sent them. The count travels in the
cursor (``rows_before``), so a run resumed after a crash continues it.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import hashlib
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from huiju_connectors.rest import Incremental

from huiju.channels.settings import IncrementalSettings

if TYPE_CHECKING:
    import msgspec
    from huiju_connectors.rest import Page

    from huiju.channels import CollectContext, ConnectionInfo
    from huiju.landing import LandResult, PreparedRows, RecordBatch
    from huiju.registry import Source

log = logging.getLogger(__name__)

#: Cursor key (beside the connector's) with the number of records the run fetched so far.
ROWS_BEFORE = "rows_before"

#: Pages landed in one transaction at most, and for how long a group may gather them.
GROUP_PAGES = 50
GROUP_SECONDS = 0.5


def incremental_of(settings: IncrementalSettings | None) -> Incremental | None:
    """The connector's ``Incremental`` for a block's ``incremental:`` settings (None: not incremental)."""
    if settings is None:
        return None
    return Incremental(settings.since_param, settings.updated_at_field, tuple(settings.key_fields),
                       settings.initial_since)


def base_url(connection: ConnectionInfo | None, source_id: str) -> str:
    """The service's base URL from the source's Connection (``extra.base_url`` or scheme://host:port)."""
    if connection is None:
        raise ValueError(f"{source_id}: no Connection resolved; set `connection:` in the source's config "
                         "and define that Airflow Connection")
    explicit = connection.extra.get("base_url")
    if explicit:
        return str(explicit).rstrip("/")
    if not connection.host:
        raise ValueError(f"{source_id}: Connection {connection.conn_id!r} has no host (and no extra.base_url)")
    if "://" in connection.host:
        url = connection.host.rstrip("/")
    else:
        scheme = connection.extra.get("scheme") or (connection.schema if connection.schema in ("http", "https")
                                                     else "https")
        url = f"{scheme}://{connection.host}"
    return f"{url}:{connection.port}" if connection.port else url


def config_path(relative: str) -> str:
    """A path from the configuration, relative to ``config/`` unless absolute."""
    from huiju.settings import get_settings

    path = Path(relative)
    return str(path if path.is_absolute() else get_settings().config_dir / path)


def ca_bundle(configured: str | None, connection: ConnectionInfo) -> str | None:
    """The CA bundle file to verify the service against: the settings', else the Connection's ``extra``."""
    chosen = configured or connection.extra.get("ca_bundle")
    return config_path(chosen) if chosen else None


def secret(connection: ConnectionInfo, name: str, field_value: str | None) -> str:
    """A credential from the Connection (its field, else ``extra[name]``), or a clear error."""
    value = field_value or connection.extra.get(name)
    if not value:
        raise ValueError(f"Connection {connection.conn_id!r} lacks {name}")
    return str(value)


def expected_fields(columns: dict[str, str], incremental: IncrementalSettings | None,
                    known: tuple[str, ...]) -> list[str]:
    """Top-level fields a record is expected to have: mapped columns, incremental fields, known extras."""
    names = list(columns) + list(known)
    if incremental is not None:
        names += [incremental.updated_at_field.split(".")[0], *(k.split(".")[0] for k in incremental.key_fields)]
    return list(dict.fromkeys(names))


def page_hashes(page: Page) -> tuple[str, str]:
    """A page's identity and its archive name, in one pass over the body.

    The identity (content id) is the sha256 of the body as received and the request that
    produced it; the archive name is the sha256 of the body alone.
    """
    body = hashlib.sha256(page.raw_bytes)
    identity = body.copy()
    identity.update(b"\x00" + page.reference.encode("utf-8"))
    return identity.hexdigest(), body.hexdigest()


@dataclass(frozen=True)
class _Prepared:
    """A page made ready to land by the fetching process: hashes, row numbers and, as it can, the rest.

    ``page`` keeps its body and cursor; its records travel only as ``rows`` (COPY text), except
    on a held page, which lands none of them, and on a page the connector left in its body
    (records in the JSON list at ``render_from``): the landing process decodes, checks (drift)
    and renders those itself (:func:`_render_from_body`), which costs less than sending them.
    ``rows_after``: records the run received up to and including this page.
    """

    page: Page
    page_id: str
    sha256: str
    first_row_no: int
    rows_after: int
    warnings: tuple[str, ...] = ()
    held: str | None = None
    rows: PreparedRows | None = None
    render_from: str | None = None


def _held_reason(source: Source, page: Page, error: Exception) -> str:
    return (f"{source.id}: {page.reference}: 接口返回的字段与登记的不一致，本页已暂停入库，"
            f"请核对后更新配置（schema drift, policy hold）: {error}")


def _prepare_pages(source: Source, pages: Iterator[Page], expected_fields: list[str], drift: str,
                   rows_before: int, records_path: str | None) -> Iterator[_Prepared]:
    """Every page the connector yields, prepared to land.

    The first page whose fields drifted under ``drift: hold`` is the last: it is held.
    ``records_path``: where a JSON body holds its records (REST): a page the connector left in
    its body (``Page.in_body``) is checked for drift and rendered from it by the landing
    process. Every other page (SOAP's; a body the connector decoded whole) is checked and
    rendered here.
    """
    from dataclasses import replace

    from huiju_connectors.rest import SchemaDrift, check_drift

    from huiju.landing import RecordBatch, prepare_rows

    for page in pages:
        page_id, sha256 = page_hashes(page)  # hashing releases the interpreter lock
        first_row_no = rows_before + 1
        count = page.record_count
        rows_before += count
        if page.in_body:
            yield _Prepared(page, page_id, sha256, first_row_no, rows_before,
                            render_from=records_path if count else None)
            continue
        try:
            warnings = check_drift(page.records, expected_fields, drift)  # type: ignore[arg-type]
        except SchemaDrift as exc:
            yield _Prepared(page, page_id, sha256, first_row_no, first_row_no - 1, held=_held_reason(source, page, exc))
            return
        rows = (prepare_rows(source, RecordBatch(page.reference, page_id, page.records, first_row_no=first_row_no))
                if page.records else None)
        yield _Prepared(replace(page, records=[]), page_id, sha256, first_row_no, rows_before, tuple(warnings),
                        rows=rows)


def _render_from_body(source: Source, expected_fields: list[str], drift: str, prepared: _Prepared) -> _Prepared:
    """A page whose records the connector left in its body, checked for drift and rendered to COPY text here.

    The common page — every record exactly the mapped fields, text or null — is decoded straight
    into value tuples (:func:`_plain_page_decoder`, no dict per record); any other is decoded by
    the connector (:func:`huiju_connectors.rest.page_records`). Either way they are the records
    the connector would have yielded. A page whose fields drifted under ``drift: hold`` is held.
    """
    from dataclasses import replace

    import msgspec
    from huiju_connectors.rest import SchemaDrift, check_body_count, check_drift, page_records

    from huiju.landing import RecordBatch, prepare_plain_rows, prepare_rows

    page = prepared.page
    path = prepared.render_from or ""
    values, records = None, None
    # A body without a backslash holds no escape, so none of its values holds a character COPY
    # text escapes (JSON forbids raw control characters, and the decoder refuses them).
    copy_ready = b"\\" not in page.raw_bytes
    plain = _plain_page_decoder(tuple(source.columns), path)
    if plain is not None:
        decoder, depth = plain
        try:
            decoded = decoder.decode(page.raw_bytes)
        except (msgspec.MsgspecError, UnicodeDecodeError):  # not plain (or not UTF-8 JSON): the general path decides
            decoded = None
        if decoded is not None:
            for _ in range(depth):
                decoded = decoded.records
            values = list(map(msgspec.structs.astuple, decoded))
            check_body_count(page, len(values))
            if page.kept is not None:
                values = [values[i] for i in page.kept]
    if values is None:
        records = page_records(page, path)
    try:
        present = records if values is None else [dict.fromkeys(source.columns)] if values else []
        warnings = tuple(check_drift(present, expected_fields, drift))
    except SchemaDrift as exc:
        return replace(prepared, held=_held_reason(source, page, exc), rows_after=prepared.first_row_no - 1,
                       render_from=None)
    rows = None
    if values is not None:
        rows = prepare_plain_rows(source, page.reference, prepared.page_id, values, prepared.first_row_no,
                                  copy_ready=copy_ready)
    if rows is None:  # a value needs escaping: the general path renders it
        records = records if records is not None else page_records(page, path)
        rows = prepare_rows(source, RecordBatch(page.reference, prepared.page_id, records,
                                                first_row_no=prepared.first_row_no))
    return replace(prepared, rows=rows, warnings=warnings, render_from=None)


@functools.cache
def _plain_page_decoder(keys: tuple[str, ...], records_path: str) -> tuple[msgspec.json.Decoder, int] | None:
    """A JSON decoder that accepts only plain pages, and how many envelopes wrap their records.

    Plain: the records (at ``records_path``, as :func:`huiju_connectors.rest.json_path` follows
    it) are objects with exactly the mapped ``keys`` (a duplicate key keeps its last value, as
    in a dict), every value a string or null; each decodes into a struct whose fields are the
    values in the order of ``keys``. ``None`` for a path through list indices.
    """
    import msgspec
    from huiju_connectors.rest import path_steps

    steps = path_steps(records_path)
    if any(step.lstrip("-").isdigit() for step in steps):
        return None
    names = [f"f{index}" for index in range(len(keys))]
    record = msgspec.defstruct("PlainRecord", [(name, str | None) for name in names],
                               rename=dict(zip(names, keys, strict=True)), forbid_unknown_fields=True)
    kind: object = list[record]
    for step in reversed(steps):
        kind = msgspec.defstruct("Envelope", [("records", kind)], rename={"records": step})
    return msgspec.json.Decoder(kind), len(steps)


class _Prefetch:
    """Fetch and prepare the next pages in a child process while earlier ones land.

    The two halves of a run are Python work — fetching (HTTP, JSON decoding) and preparing
    (hashes, drift, COPY text) on one side, landing (the ledger, ``COPY``, archive packs) on the
    other — and as two threads of one interpreter they take turns on its lock: a run of 2,000
    pages went at the speed of their sum on a machine with a core to spare. So, as a source
    and a destination connected by a pipe: the child is forked, inheriting the (not yet
    started) iterator of prepared pages and everything imported, and sends each page pickled
    — its records as COPY text or left in its JSON body, never pickled as objects — down a
    pipe; a thread here reads them, has ``finish`` render those left in their body (decoding
    JSON in C costs less than unpickling objects, and this process has time to spare while the
    database works), and queues them at most ``depth`` pages ahead. The child dies with
    the process that started it (``PR_SET_PDEATHSIG``): a collector killed mid-run leaves no
    fetcher behind.

    Safe for exactly-once: each page's cursor is computed by the connector from the pages
    before it, not from what was landed, and a page fetched but never landed (crash, error)
    is simply fetched again by the next run.
    """

    #: What :meth:`next` returns when no page arrived in time.
    LATER = object()

    def __init__(self, prepared: Iterator[_Prepared], finish: Callable[[_Prepared], _Prepared],
                 depth: int = 64) -> None:
        read_end, write_end = os.pipe()
        with contextlib.suppress(OSError, AttributeError):  # fewer wake-ups per page than the default 64 KiB
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 1 << 20)
        context = multiprocessing.get_context("fork")  # the iterator and its HTTP client cannot be pickled
        self._child = context.Process(target=_send_pages, args=(prepared, read_end, write_end, os.getpid()),
                                      name="huiju-fetch", daemon=True)
        self._child.start()
        os.close(write_end)
        self._pipe = open(read_end, "rb", buffering=1 << 20)  # noqa: SIM115 - closed by close()
        self._slots: queue.Queue[tuple] = queue.Queue(maxsize=depth)
        self._done = False
        self._finish = finish
        self._reader = threading.Thread(target=self._read, name="huiju-fetch-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            header = self._pipe.read(8)
            if len(header) < 8:  # the child is gone without a word (killed, out of memory)
                self._slots.put(("gone",))
                return
            item = pickle.loads(self._pipe.read(int.from_bytes(header, "little")))  # noqa: S301 - our own child
            if item[0] == "page" and item[1].render_from is not None:
                try:
                    item = ("page", self._finish(item[1]))
                except Exception as exc:  # raised to the collector, in order, in place of the page
                    item = ("failed", exc)
            self._slots.put(item)
            if item[0] != "page":
                return

    def next(self, timeout: float) -> _Prepared | object | None:
        """The next prepared page, ``None`` after the last one.

        :attr:`LATER` when none arrived within ``timeout`` seconds; raises what the connector raised.
        """
        if self._done:
            return None
        try:
            kind, *item = self._slots.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return self.LATER
        if kind == "page":
            return item[0]
        self._done = True
        if kind == "error":
            raise _rebuilt(*item)
        if kind == "failed":
            raise item[0]
        if kind == "gone":
            self._child.join(timeout=5)
            raise RuntimeError(f"the page fetcher stopped unexpectedly (exit code {self._child.exitcode})")
        return None

    def close(self) -> None:
        """Stop fetching (pages not taken are dropped; the next run fetches them again)."""
        if self._child.is_alive():  # done, or fetching pages nobody will take
            self._child.kill()
        self._child.join(timeout=5)
        while self._reader.is_alive():  # it may wait for room in a full queue
            with contextlib.suppress(queue.Empty):
                self._slots.get_nowait()
            self._reader.join(timeout=0.05)
        self._pipe.close()


def _send_pages(prepared: Iterator[_Prepared], read_end: int, write_end: int, parent: int) -> None:
    """The fetching child: every prepared page down the pipe, then ``done`` or the error."""
    os.close(read_end)
    _die_with(parent)

    def send(item: tuple) -> None:
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(len(data).to_bytes(8, "little") + data)
        while view:
            view = view[os.write(write_end, view):]

    try:
        for page in prepared:
            send(("page", page))
        send(("done",))
    except BrokenPipeError:  # the parent stopped reading
        return
    except BaseException as exc:  # handed over to the parent, raised there
        with contextlib.suppress(BrokenPipeError):
            send(("error", *_portable(exc)))


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``)."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the parent's close() still stops the child
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _portable(error: BaseException) -> tuple[type[BaseException], tuple, dict, str]:
    """An exception as plain parts that survive pickling (connector errors have keyword-only arguments)."""
    import traceback

    return type(error), error.args, dict(vars(error)), "".join(traceback.format_exception(error))


def _rebuilt(kind: type[BaseException], args: tuple, state: dict, trace: str) -> BaseException:
    """The exception the fetching child raised, with its attributes and its traceback as a note."""
    error = kind.__new__(kind, *args)
    error.args = args
    vars(error).update(state)
    error.add_note(f"raised in the page fetcher:\n{trace}")
    return error


@dataclass
class _Group:
    """Pages gathered to land in one transaction, and the cursor after them."""

    pages: list[_Prepared] = field(default_factory=list)
    cursor: dict | None = None

    def batches(self) -> list[RecordBatch]:
        """The group's batches, their pages archived as one pack first (see :mod:`huiju.archive`)."""
        from huiju.archive import archive_pack
        from huiju.landing import RecordBatch

        references = iter(archive_pack([p.page.raw_bytes for p in self.pages], [p.sha256 for p in self.pages])
                          if self.pages else [])
        return [RecordBatch(p.page.reference, p.page_id, p.page.records, p.page.raw_bytes,
                            first_row_no=p.first_row_no, warnings=p.warnings, held=p.held,
                            archived=(p.sha256, next(references)), rows=p.rows)
                for p in self.pages]


def land_pages(ctx: CollectContext, pages: Iterator[Page], *, start_cursor: dict | None, drift: str,
               expected_fields: list[str], records_path: str | None = None) -> list[LandResult]:
    """Land every page the connector yields, each with its cursor (see the module docstring).

    Pages are fetched and prepared in a child process (:class:`_Prefetch`); ``records_path``
    (REST: where the JSON body holds its records) lets this process render a page's records
    from its body instead of receiving them. Group commit: pages
    land together in one transaction with :func:`huiju.landing.land_record_batches` — each
    page still its own load with its own ledger row — with the cursor after the group's last
    page, and their originals are archived as one pack just before. A group closes at
    :data:`GROUP_PAGES` pages, or :data:`GROUP_SECONDS` after it opened (however slow the
    department is, a page waits no longer than that to land), or at the end of the run. A
    crash loses a group's data and cursor together, so it is fetched again and still landed
    exactly once. Every group but the run's last commits without waiting for the WAL flush;
    the last one's durable commit covers them all (see ``durable`` in
    :func:`~huiju.landing.land_record_batches`).
    """
    from huiju.landing import land_record_batches

    source = ctx.source
    results: list[LandResult] = []
    start = start_cursor or {}
    position = start.get("position")  # of the next request: where a refusal is reported
    rows_before = int(start.get(ROWS_BEFORE, 0)) if position is not None else 0
    failure: BaseException | None = None
    feed = _Prefetch(_prepare_pages(source, pages, expected_fields, drift, rows_before, records_path),
                     functools.partial(_render_from_body, source, expected_fields, drift))
    try:
        finished = False
        while not finished:
            group = _Group()
            opened = time.monotonic()
            while len(group.pages) < GROUP_PAGES:
                try:
                    item = feed.next(timeout=opened + GROUP_SECONDS - time.monotonic())
                except Exception as exc:  # the connector failed: land what is here, then report it
                    failure, finished = exc, True
                    break
                if item is None:
                    finished = True
                    break
                if item is _Prefetch.LATER:
                    if group.pages or group.cursor is not None:
                        break
                    opened = time.monotonic()  # nothing to land yet: a new group opens with the next page
                    continue
                assert isinstance(item, _Prepared)
                if item.held is not None:  # the cursor stays before it
                    group.pages.append(item)
                    finished = True
                    break
                position = item.page.next_cursor.get("position")
                group.cursor = dict(item.page.next_cursor)
                if position is not None:
                    group.cursor[ROWS_BEFORE] = item.rows_after
                if item.rows is not None:
                    group.pages.append(item)
            if group.pages or group.cursor is not None:
                results += land_record_batches(ctx.conn, ctx.registry, source, group.batches(), cursor=group.cursor,
                                               data_date=ctx.data_date, durable=finished)
    finally:
        feed.close()
    if failure is not None:
        if getattr(failure, "retryable", True) is False:
            _record_refusal(ctx, failure, position)
        raise failure
    return results


def _record_refusal(ctx: CollectContext, error: BaseException, position: object) -> None:
    """Record a terminal refusal (a business fault, a 4xx, a malformed answer) as a failed load.

    The department's own words stay in the ledger, where stewards and the department's summary
    see failed batches; the load id derives from the request position and the message, so a
    rerun meeting the same refusal updates the same row.
    """
    import json

    from huiju.landing import _record_failure
    from huiju.ledger import make_content_id, make_load_id
    from huiju.masking import mask_text

    source = ctx.source
    reference = f"{source.id} @ {json.dumps(position, ensure_ascii=False, sort_keys=True)}"
    message = mask_text(f"{source.id}: {reference}: 接口拒绝了请求或返回了无法使用的应答，采集已停止，"
                        f"请核对后处理（terminal, not retried）: {error}")
    content = make_content_id(reference, str(error))
    _record_failure(ctx.conn, source, ctx.registry.dataset_of(source), reference, content, 0, None,
                    make_load_id(source.id, content), message, ctx.data_date)
    log.error("%s", message)
