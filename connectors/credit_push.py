"""The HTTP side of pushing records to a credit platform (市公共信用信息平台, the provincial platform).

The interface the platforms play (the demo's and the tests' simulated platforms, ``huiju_demo.credit_platform``)::

    POST <submit_path>                     Idempotency-Key: <key>   (the same key on every resend of a batch)
      {"batch_id": "...", "records": [{"record_id": "...", "action": "upsert" | "withdraw",
                                       "item_set": "CF", "data": {"CF_WSH": "...", ...}}, ...]}
    200 {"batch_id": "...", "receipts": [{"record_id": "...", "status": "accepted" | "rejected",
                                          "reason": "..."}, ...]}
    GET <status_path>/<batch_id>           the receipts of a batch already received; 404 when it never arrived

Timeouts, dropped connections, HTTP 5xx and 429 are retried under the project's one
:class:`~huiju_connectors.retry.RetryPolicy` (full jitter; ``Retry-After`` honoured). 413 raises
:class:`PayloadTooLarge` (the caller splits the batch); any other 4xx raises :class:`BatchRefused`,
final for that batch. A receipt that cannot be read, or that leaves records out, makes those
records ``unknown`` (:class:`Receipts`): the caller asks again by batch id, never assumes delivery.
Credentials come in as an ``httpx.Auth`` (:mod:`huiju_connectors.http_auth`); nothing here logs a body.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from huiju_connectors.rest.client import _retryable_transport_error, parse_retry_after
from huiju_connectors.retry import GaveUp, RetryPolicy

__all__ = ["BatchRefused", "CreditPlatform", "PayloadTooLarge", "PlatformUnavailable", "Receipts"]

log = logging.getLogger(__name__)

OUTCOMES = ("accepted", "rejected")


class PushError(Exception):
    """A batch could not be delivered; ``status`` is the HTTP status (None for transport failures)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PlatformUnavailable(PushError):
    """Every attempt failed with something worth retrying (5xx, 429, timeouts): try the batch again later."""


class PayloadTooLarge(PushError):
    """HTTP 413: the batch must be split."""


class BatchRefused(PushError):
    """Any other 4xx: the platform refuses the batch as it is; final for that batch."""


class _TryAgain(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Receipts:
    """What the platform said about each record of a batch: ``(outcome, reason)`` by record id.

    ``outcomes`` holds only what a well-formed receipt said; every other record of the batch is unknown.
    ``malformed`` says why the answer could not be read in full (None when it could).
    """

    outcomes: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    malformed: str | None = None

    def of(self, record_id: str) -> tuple[str, str | None]:
        """``(accepted|rejected|unknown, reason)`` for one record."""
        return self.outcomes.get(record_id, ("unknown", self.malformed))


def parse_receipts(body: bytes, batch_id: str, record_ids: Sequence[str]) -> Receipts:
    """Read a receipt body; anything odd (not JSON, another batch, a bad status) leaves records unknown."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Receipts(malformed="receipt is not JSON")
    if not isinstance(document, dict) or not isinstance(document.get("receipts"), list):
        return Receipts(malformed="receipt has no receipts list")
    if document.get("batch_id") not in (None, batch_id):
        return Receipts(malformed="receipt names another batch")
    wanted = set(record_ids)
    outcomes: dict[str, tuple[str, str | None]] = {}
    odd = 0
    for item in document["receipts"]:
        record_id = item.get("record_id") if isinstance(item, dict) else None
        status = item.get("status") if isinstance(item, dict) else None
        if record_id not in wanted or status not in OUTCOMES:
            odd += 1
            continue
        reason = item.get("reason")
        outcomes[str(record_id)] = (str(status), str(reason) if reason is not None else None)
    missing = len(wanted) - len(outcomes)
    malformed = f"receipt unreadable for {missing} record(s)" if missing or odd else None
    return Receipts(outcomes, malformed)


@dataclass
class CreditPlatform:
    """One target platform's push interface: ``submit`` a batch, ask its ``status``.

    ``client`` is an ``httpx.Client`` the caller owns (keep-alive across batches); ``auth`` signs each
    request afresh, so a resend carries a new timestamp and nonce but the same idempotency key.
    """

    base_url: str
    auth: httpx.Auth | None = None
    submit_path: str = "/api/v1/push/batches"
    status_path: str = "/api/v1/push/batches"
    idempotency_header: str = "Idempotency-Key"
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=5))
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = random.random
    client: httpx.Client | None = None

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._retrier = self.retry.retrier(lambda exc: isinstance(exc, _TryAgain), sleep=self.sleep, rng=self.rng,
                                           logger=log)

    def _client(self) -> httpx.Client:
        if self.client is None:
            self.client = httpx.Client(timeout=self.timeout)
        return self.client

    def close(self) -> None:
        """Close the HTTP client (if this object made it)."""
        if self.client is not None:
            self.client.close()
            self.client = None

    def _send(self, method: str, url: str, *, content: bytes | None = None,
              headers: Mapping[str, str] | None = None) -> httpx.Response | None:
        """One request under the retry policy; the response, or None for 404 on a status query."""
        client = self._client()

        def attempt() -> httpx.Response | None:
            try:
                response = client.request(method, url, content=content, headers=headers, auth=self.auth)
            except httpx.HTTPError as exc:
                if not _retryable_transport_error(exc):
                    raise PushError(f"{method} {url}: {type(exc).__name__}") from None
                raise _TryAgain(f"{type(exc).__name__}") from None
            status = response.status_code
            if 200 <= status < 300:
                return response
            if status == 429 or status >= 500:
                raise _TryAgain(f"HTTP {status}", parse_retry_after(response.headers.get("Retry-After")))
            if status == 413:
                raise PayloadTooLarge(f"{method} {url}: HTTP 413, batch too large", status)
            if status == 404 and method == "GET":
                return None
            raise BatchRefused(f"{method} {url}: HTTP {status} (not retried)", status)

        try:
            return self._retrier(attempt, lambda: f"{method} {url}")
        except GaveUp as gave_up:
            raise PlatformUnavailable(f"{method} {url}: gave up after {gave_up.attempts} attempts; "
                                      f"last: {gave_up.last}") from None

    def submit(self, batch_id: str, idempotency_key: str, record_ids: Sequence[str],
               records_json: Sequence[str]) -> Receipts:
        """POST one batch; its receipts. ``records_json``: each wire record's JSON text (record_id, action,
        item_set, data), rendered by the caller and sent byte for byte, in order; ``record_ids`` theirs."""
        body = ('{"batch_id":' + json.dumps(batch_id, ensure_ascii=False) + ',"records":['
                + ",".join(records_json) + "]}").encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", self.idempotency_header: idempotency_key}
        response = self._send("POST", self.base_url + self.submit_path, content=body, headers=headers)
        assert response is not None  # only a GET answers None
        return parse_receipts(response.content, batch_id, record_ids)

    def status(self, batch_id: str, record_ids: Sequence[str]) -> Receipts | None:
        """The receipts of a batch the platform already has; None when it never received it."""
        response = self._send("GET", f"{self.base_url}{self.status_path}/{batch_id}")
        if response is None:
            return None
        return parse_receipts(response.content, batch_id, record_ids)
