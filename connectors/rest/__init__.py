"""REST/JSON department interfaces: paged, incremental, retried, rate-limited reads.

The core calls :func:`fetch_pages` and lands each :class:`Page` it yields. A page carries the
records, the response body exactly as received (for the archive), a stable reference and the
``next_cursor`` — the JSON the core stores as the source's cursor *in the same transaction*
that lands the page. Restarting with the stored cursor therefore resumes right after the last
landed page, whatever killed the previous run.

The package is laid out by concern (as dlt's ``rest_client``): :mod:`.paging` is the paging and
watermark engine, independent of HTTP (the SOAP connector drives it too, so both channels give
the same guarantees); :mod:`.client` the HTTP requests with retries and a rate limit;
:mod:`.body` JSON bodies (paths, decoding, the cheap check that leaves records in the body);
:mod:`.drift` schema drift; :mod:`.errors` the errors. The keys-at-watermark bookkeeping is
:mod:`huiju_connectors.incremental`, which front-end databases share.

Incremental guarantee (sources with :class:`Incremental`)
---------------------------------------------------------
The cursor holds the *watermark* ``W`` (the greatest ``updated_at`` among landed records,
exactly as the source wrote it) and ``seen_keys``: the keys of the landed records whose
``updated_at`` equals ``W``. Every query asks for ``updated_since=W`` and the source must treat
it as **inclusive** (``>= W``) and return records **ordered by updated_at ascending**. A
returned record is dropped only if its ``updated_at == W`` and its key is in ``seen_keys``.
Hence:

* the watermark never moves ahead of landed data (it is computed from landed records only and
  stored with them);
* records sharing the newest timestamp are never lost — neither across a page boundary nor
  when the department inserts more rows with that same timestamp between two runs (whatever
  their key) — and never landed twice;
* a record *updated* later gets a newer ``updated_at`` and is landed again, as a new version.

With ``page``/``offset`` pagination the query restarts at the first page whenever the watermark
advances, so rows that move to the end of the result set while we page (because they were
updated meanwhile) cannot make us skip their neighbours. A record arriving with
``updated_at < W`` means the source does not order by ``updated_at``; that breaks the guarantee,
so it is a terminal :class:`RestError` rather than a silent gap.

Limits: ``seen_keys`` grows with the number of records sharing one timestamp (a bulk update
stamping 100 000 rows alike makes a cursor of 100 000 keys), and a row re-saved with the very
same ``updated_at`` and key is not fetched again (timestamp granularity). Timestamps are
compared as ISO-8601 (aware ones in UTC) or as numbers; a source must not mix naive and aware.
"""

from __future__ import annotations

from huiju_connectors.retry import RetryPolicy

from .body import check_body_count, decode_json, json_path, page_records, path_steps, plain_records, records_at
from .client import RestSource, TokenBucket, fetch_pages, parse_retry_after, redact_url, redact_url_params
from .drift import check_drift
from .errors import RestError, SchemaDrift
from .paging import CURSOR_VERSION, Caps, Fetched, Incremental, Page, Pagination, paginate

__all__ = [
    "CURSOR_VERSION",
    "Caps",
    "Fetched",
    "Incremental",
    "Page",
    "Pagination",
    "RestError",
    "RestSource",
    "RetryPolicy",
    "SchemaDrift",
    "TokenBucket",
    "check_body_count",
    "check_drift",
    "decode_json",
    "fetch_pages",
    "json_path",
    "page_records",
    "paginate",
    "parse_retry_after",
    "path_steps",
    "plain_records",
    "records_at",
    "redact_url",
    "redact_url_params",
]
