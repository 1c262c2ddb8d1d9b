"""A credit platform on loopback (市公共信用信息平台, 省数据共享交换平台) taking pushed batches, with receipts.

It plays the interface of :mod:`huiju_connectors.credit_push` for the demo, the push tests and the
``push_100k`` benchmark: ``POST`` a batch (``Idempotency-Key``), per-record receipts (accepted, or
rejected with a reason by its ``reject`` rule), ``GET`` a batch's receipts by id (404 if it never
arrived). It checks credentials as the real ones do (bearer token, or app key + HMAC-SHA256 / HMAC-SM3
signature over the documented canonical string, rewritten here from the specification) and keeps
what it applied, so a test can prove every record arrived exactly once:

* a batch is applied once per idempotency key (and per batch id): a resend gets the stored receipts;
* ``applied`` counts each (record id, action, content) applied; ``records`` is the platform's state;
* ``bodies_by_key`` keeps the digest of every body POSTed under each idempotency key (a resend must
  carry the same bytes: :meth:`CreditPlatform.changed_resends`).

Faults (:attr:`CreditPlatform.faults`, consumed in order, one per submit request; ``injected`` counts
them): ``"503"``, ``"429"`` (``Retry-After``), ``"commit-then-timeout"`` (applied, then no answer
within the client's timeout), ``"malformed"`` (applied, the receipt garbled), ``"partial"`` (applied,
half the receipts left out), ``"400"``; ``"ok"`` lets one request through (not a fault).
``down`` answers 503 to everything (an outage); ``max_records`` answers 413 above that many records.

The provincial platform also serves the province's backflow (省回流) of the day to the city:
``backflow`` holds a REST interface per backflow source (:class:`huiju_demo.rest_gateway.RestGateway`,
paged, updated-since, signed as the platform signs), each answering at its own path on the same server
(行政处罚, 行政许可); :func:`running_platforms` gives each the batch of its source
(:func:`huiju_demo.backflow.backflow_batch`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from huiju_demo.backflow import backflow_batch
from huiju_demo.manifest import SourceSubmission
from huiju_demo.rest_gateway import RestGateway
from huiju_demo.simulators import SimulatedSource
from huiju_demo.simulators.rest import gateway_for
from huiju_demo.webservice import QuietHandler, serving, stamped

from huiju.registry import ORIGIN_BACKFLOW, Registry

SUBMIT_PATH = "/api/v1/push/batches"


def platform_canonical(method: str, raw_path: str, body: bytes, timestamp: str, nonce: str, algorithm: str) -> str:
    """The platform's rendering of the documented signature string (``http_auth.canonical_request``)."""
    parts = urlsplit(raw_path)
    query = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~"))
                   for k, v in parse_qsl(parts.query, keep_blank_values=True))
    return "\n".join([method, unquote(parts.path), "&".join(f"{k}={v}" for k, v in query), timestamp, nonce,
                      hashlib.new(algorithm, body).hexdigest()])


def reject_none(record: dict[str, Any]) -> str | None:
    """Accept every record."""
    return None


@dataclass
class CreditPlatform:
    """The simulated platform (see the module docstring); ``running()`` serves it on loopback."""

    name: str = "city_credit"
    auth: str = "hmac"  # "hmac" | "bearer"
    algorithm: str = "sha256"  # "sha256" | "sm3"
    app_key: str = "huiju-push"
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    reject: Callable[[dict[str, Any]], str | None] = reject_none
    faults: list[str] = field(default_factory=list)
    retry_after: str = "1"
    hang_seconds: float = 1.0
    max_records: int | None = None
    down: bool = False
    injected: int = 0
    applied: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches_in_order: list[str] = field(default_factory=list)
    receipts_by_key: dict[str, bytes] = field(default_factory=dict)
    receipts_by_batch: dict[str, bytes] = field(default_factory=dict)
    bodies_by_key: dict[str, set[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    backflow: dict[str, RestGateway] = field(default_factory=dict)  # the province's backflow interfaces, by path
    url: str = ""

    def connection(self) -> dict[str, Any]:
        """The Airflow Connection (JSON form) reaching this platform with its credentials."""
        if self.auth == "bearer":
            return {"conn_type": "http", "password": self.secret, "extra": {"base_url": self.url}}
        return {"conn_type": "http", "login": self.app_key, "password": self.secret, "extra": {"base_url": self.url}}

    def _authorised(self, handler: BaseHTTPRequestHandler, body: bytes) -> bool:
        headers = handler.headers
        if self.auth == "bearer":
            return hmac.compare_digest(headers.get("Authorization", ""), f"Bearer {self.secret}")
        if headers.get("X-App-Key") != self.app_key:
            return False
        canonical = platform_canonical(handler.command, handler.path, body, headers.get("X-Timestamp", ""),
                                       headers.get("X-Nonce", ""), self.algorithm)
        expected = base64.b64encode(hmac.new(self.secret.encode(), canonical.encode(), self.algorithm).digest())
        return hmac.compare_digest(expected.decode(), headers.get("X-Signature", ""))

    def _take_fault(self) -> str | None:
        with self.lock:
            if self.down:
                self.injected += 1
                return "503"
            if self.faults:
                fault = self.faults.pop(0)
                if fault == "ok":  # a request let through, to place the next fault
                    return None
                self.injected += 1
                return fault
        return None

    def _apply(self, batch_id: str, key: str, records: list[dict[str, Any]]) -> bytes:
        """Apply a batch once (per key and per batch id); its receipts body."""
        with self.lock:
            stored = self.receipts_by_key.get(key) or self.receipts_by_batch.get(batch_id)
            if stored is not None:
                return stored
            receipts = []
            for record in records:
                reason = self.reject(record)
                record_id = str(record.get("record_id"))
                if reason is None:
                    content = json.dumps(record, ensure_ascii=False, sort_keys=True)
                    self.applied[(record_id, str(record.get("action")), content)] += 1
                    if record.get("action") == "withdraw":
                        self.records.pop(record_id, None)
                    else:
                        self.records[record_id] = record
                    receipts.append({"record_id": record_id, "status": "accepted"})
                else:
                    receipts.append({"record_id": record_id, "status": "rejected", "reason": reason})
            body = json.dumps({"batch_id": batch_id, "receipts": receipts}, ensure_ascii=False).encode()
            self.receipts_by_key[key] = body
            self.receipts_by_batch[batch_id] = body
            self.batches_in_order.append(batch_id)
            return body

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The request handler class bound to this platform."""
        platform = self

        class Handler(QuietHandler):
            def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _read(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                backflow = platform.backflow.get(urlsplit(self.path).path)
                if backflow is not None:
                    status, payload, headers = backflow.answer(self)  # it checks its own signature
                    return self._answer(status, json.dumps(payload, ensure_ascii=False).encode(), headers)
                if not platform._authorised(self, b""):
                    return self._answer(401, b'{"msg":"unauthorised"}')
                if platform.down:
                    return self._answer(503, b'{"msg":"maintenance"}')
                batch_id = unquote(urlsplit(self.path).path.rsplit("/", 1)[-1])
                stored = platform.receipts_by_batch.get(batch_id)
                if stored is None:
                    return self._answer(404, b'{"msg":"no such batch"}')
                return self._answer(200, stored)

            def do_POST(self) -> None:
                body = self._read()
                if not platform._authorised(self, body):
                    return self._answer(401, b'{"msg":"unauthorised"}')
                with platform.lock:
                    platform.bodies_by_key.setdefault(self.headers.get("Idempotency-Key") or "", set()).add(
                        hashlib.sha256(body).hexdigest())
                fault = platform._take_fault()
                if fault == "503":
                    return self._answer(503, b'{"msg":"busy"}')
                if fault == "429":
                    return self._answer(429, b'{"msg":"slow down"}', {"Retry-After": platform.retry_after})
                if fault == "400":
                    return self._answer(400, b'{"msg":"bad request"}')
                document = json.loads(body)
                records = document["records"]
                if platform.max_records is not None and len(records) > platform.max_records:
                    with platform.lock:
                        platform.injected += 1
                    return self._answer(413, b'{"msg":"too large"}')
                key = self.headers.get("Idempotency-Key") or ""
                receipts = platform._apply(str(document["batch_id"]), key, records)
                if fault == "commit-then-timeout":
                    time.sleep(platform.hang_seconds)
                    self.close_connection = True
                    return None
                if fault == "malformed":
                    return self._answer(200, receipts[: len(receipts) // 2])
                if fault == "partial":
                    parsed = json.loads(receipts)
                    parsed["receipts"] = parsed["receipts"][: len(parsed["receipts"]) // 2]
                    return self._answer(200, json.dumps(parsed, ensure_ascii=False).encode())
                return self._answer(200, receipts)

        return Handler

    @contextmanager
    def running(self) -> Iterator[CreditPlatform]:
        """Serve on 127.0.0.1 (a free port) until the block ends; ``url`` is set meanwhile."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        server.daemon_threads = True
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"
        with serving(server):
            yield self

    def duplicates(self) -> list[tuple[str, str, str]]:
        """Record versions applied more than once (exactly-once says: none)."""
        return [key for key, count in self.applied.items() if count > 1]

    def changed_resends(self) -> list[str]:
        """Idempotency keys that came with more than one body (a resend must carry the same bytes: none)."""
        return [key for key, bodies in self.bodies_by_key.items() if len(bodies) > 1]


def occasional_rejection(record: dict[str, Any]) -> str | None:
    """The demo platforms' rule: about one record in forty is refused, the same ones every run."""
    if record.get("action") != "upsert":
        return None
    digest = hashlib.sha256(str(record.get("record_id")).encode()).digest()
    return "文书号不符合省级编码规范，请核对后重报" if digest[0] % 40 == 0 else None


@dataclass
class RunningPlatforms:
    """The demo's platforms, one per push target, the Connections that reach them, and the backflow they serve."""

    platforms: dict[str, tuple[str, CreditPlatform]]  # target → (its Connection id, the platform)
    backflow: tuple[SimulatedSource, ...] = ()  # each backflow source: what it serves, its Connection

    @property
    def submissions(self) -> tuple[SourceSubmission, ...]:
        """What each backflow source serves and which of its rows must be quarantined (the demo's manifest)."""
        return tuple(s.submission for s in self.backflow)

    def airflow_env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_<ID>`` for each target's Connection and each backflow source's."""
        return {**{f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(platform.connection())
                   for conn_id, platform in self.platforms.values()},
                **{f"AIRFLOW_CONN_{s.connection_id.upper()}": json.dumps(s.connection) for s in self.backflow}}


@contextmanager
def running_platforms(targets: dict[str, Any], registry: Registry | None = None, day: date | None = None,
                      rows: int = 0) -> Iterator[RunningPlatforms]:
    """A simulated platform on loopback for every push target (its auth and signature as configured).

    With ``registry`` and ``day``, the provincial platform (the target of level ``province``) also serves
    the day's batch of every backflow source (origin 省回流), ``rows`` records each, signed as it signs.
    """
    backflow_sources = [s for s in (registry.sources.values() if registry else ()) if s.origin == ORIGIN_BACKFLOW]
    with ExitStack() as stack:
        platforms = {}
        served: list[SimulatedSource] = []
        for name, target in sorted(targets.items()):
            platform = CreditPlatform(name=name, auth=target.auth, algorithm=target.signature,
                                      reject=occasional_rejection)
            for source in backflow_sources if target.level == "province" and day is not None else ():
                records, submission = backflow_batch(registry, source, day, rows)
                incremental = source.channel_settings.incremental
                gateway = gateway_for(
                    source, stamped(records, incremental.updated_at_field if incremental else None, day),
                    secret=platform.secret, app_key=platform.app_key)
                platform.backflow[gateway.path] = gateway
                served.append(SimulatedSource(submission, source.connection or "", {}))
            platforms[name] = (target.connection, stack.enter_context(platform.running()))
        # The backflow sources reach the platform that serves them with its own credentials.
        province = next((p for _, p in platforms.values() if p.backflow), None)
        backflow = tuple(SimulatedSource(s.submission, s.connection_id, province.connection()) for s in served
                         if province is not None)
        yield RunningPlatforms(platforms, backflow)
