"""Authentication for department web services, as ``httpx.Auth`` classes.

Three schemes cover the gateways city departments expose:

* :class:`BearerAuth` — a static token (``Authorization: Bearer …``).
* :class:`HmacAuth` — the app-key / app-secret request signature used by Chinese government
  API gateways (政务服务网关 / 数据共享交换平台). The canonical form is documented on the class and
  built by :func:`canonical_request`, so a gateway's spec can be checked against it line by line.
* :class:`OAuth2ClientCredentials` — RFC 6749 §4.4: a token from the token endpoint, cached
  until shortly before it expires, fetched again once if the API answers 401.

Credentials come in as arguments (resolved by the caller from Airflow Connections or the
environment). Nothing here logs a secret, a signature or a token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from urllib.parse import quote

import httpx

__all__ = [
    "AuthError",
    "BearerAuth",
    "HmacAuth",
    "HmacHeaders",
    "OAuth2ClientCredentials",
    "canonical_query",
    "canonical_request",
    "digest_of",
    "hmac_signature",
]

log = logging.getLogger(__name__)


class AuthError(Exception):
    """Authentication could not be obtained (e.g. the token endpoint refused the client)."""


class BearerAuth(httpx.Auth):
    """Send a fixed bearer token with every request."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("BearerAuth needs a non-empty token")
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the ``Authorization`` header."""
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:  # never show the token in logs or tracebacks
        return "BearerAuth(token=***)"


# --------------------------------------------------------------------------------------------
# HMAC request signature
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HmacHeaders:
    """Header names a gateway expects; the defaults are the common ones, gateways differ."""

    app_key: str = "X-App-Key"
    timestamp: str = "X-Timestamp"
    nonce: str = "X-Nonce"
    signature: str = "X-Signature"


def _rfc3986(value: str) -> str:
    # Percent-encode everything except RFC 3986 unreserved characters, so both sides agree
    # byte for byte regardless of how a client library chose to encode the URL.
    return quote(value, safe="-_.~")


def canonical_query(params: list[tuple[str, str]]) -> str:
    """Sorted query string: ``k=v`` pairs (RFC 3986-encoded), sorted by key then value, joined by ``&``."""
    pairs = sorted((_rfc3986(k), _rfc3986(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in pairs)


#: Signature algorithms: HMAC-SHA256, or HMAC-SM3 (GB/T 32905-2016) where a platform requires the national
#: algorithm. SM3 comes from OpenSSL 3 (hashlib), so no extra package: :func:`digest_of` says so if it is missing.
ALGORITHMS = ("sha256", "sm3")


def digest_of(algorithm: str) -> str:
    """The hashlib name of a signature ``algorithm``; a clear error where this OpenSSL lacks SM3."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown signature algorithm {algorithm!r}: one of {', '.join(ALGORITHMS)}")
    try:
        hashlib.new(algorithm)
    except ValueError:
        raise ValueError(f"this Python's OpenSSL has no {algorithm}; HMAC-{algorithm.upper()} cannot be signed") \
            from None
    return algorithm


def canonical_request(
    method: str, path: str, params: list[tuple[str, str]], timestamp: str, nonce: str, body: bytes,
    algorithm: str = "sha256",
) -> str:
    """Build the string the HMAC signature covers.

    Six lines joined by ``\\n`` (no trailing newline)::

        METHOD                 upper case, e.g. GET
        PATH                   the decoded URL path, e.g. /api/v1/persons (no query)
        SORTED QUERY STRING    see canonical_query(); empty line when there is no query
        TIMESTAMP              milliseconds since the epoch, as sent in the timestamp header
        NONCE                  as sent in the nonce header (uuid4 hex)
        BODY HASH              lower-case hex SHA-256 (SM3 with ``algorithm="sm3"``) of the body (of b"" when empty)
    """
    body_hash = hashlib.new(digest_of(algorithm), body).hexdigest()
    return "\n".join([method.upper(), path or "/", canonical_query(params), timestamp, nonce, body_hash])


def hmac_signature(secret: str | bytes, canonical: str, algorithm: str = "sha256") -> str:
    """``base64(HMAC-SHA256(secret, canonical))`` (or HMAC-SM3) — the value of the signature header."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    digest = hmac.new(key, canonical.encode("utf-8"), digest_of(algorithm)).digest()
    return base64.b64encode(digest).decode("ascii")


class HmacAuth(httpx.Auth):
    """Sign every request with the app secret, as government API gateways require.

    Headers sent (names configurable through :class:`HmacHeaders`):

    * ``X-App-Key``: the app key (identifies the caller; not secret);
    * ``X-Timestamp``: milliseconds since the epoch (gateways reject stale requests, typically
      older than 5-15 minutes, which is why each retry is signed afresh);
    * ``X-Nonce``: a fresh ``uuid4().hex`` per request (gateways reject replays);
    * ``X-Signature``: ``base64(HMAC-SHA256(app_secret, canonical_request(...)))``.

    The canonical string is documented in :func:`canonical_request`.
    """

    requires_request_body = True  # the body hash is part of the signature

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        *,
        headers: HmacHeaders | None = None,
        clock: Callable[[], float] = time.time,
        nonce_factory: Callable[[], str] = lambda: uuid.uuid4().hex,
        algorithm: str = "sha256",
    ) -> None:
        if not app_key or not app_secret:
            raise ValueError("HmacAuth needs an app key and an app secret")
        self._algorithm = digest_of(algorithm)
        self._app_key = app_key
        self._secret = app_secret
        self._headers = headers or HmacHeaders()
        self._clock = clock
        self._nonce_factory = nonce_factory

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the app key, timestamp, nonce and signature headers."""
        timestamp = str(int(self._clock() * 1000))
        nonce = self._nonce_factory()
        canonical = canonical_request(
            request.method,
            request.url.path,
            list(request.url.params.multi_items()),
            timestamp,
            nonce,
            request.content,
            self._algorithm,
        )
        h = self._headers
        request.headers[h.app_key] = self._app_key
        request.headers[h.timestamp] = timestamp
        request.headers[h.nonce] = nonce
        request.headers[h.signature] = hmac_signature(self._secret, canonical, self._algorithm)
        yield request

    def __repr__(self) -> str:
        return f"HmacAuth(app_key={self._app_key!r}, app_secret=***)"


# --------------------------------------------------------------------------------------------
# OAuth2 client credentials
# --------------------------------------------------------------------------------------------


class OAuth2ClientCredentials(httpx.Auth):
    """OAuth2 client-credentials grant with a cached token.

    The token is requested from ``token_url`` (``POST grant_type=client_credentials``), cached
    until ``expires_in - margin_seconds`` and reused by every request through the same auth
    object (thread-safe). If the API answers 401 — the token was revoked or the clocks
    disagree — the token is fetched again and the request retried once; a second 401 is
    returned to the caller, who treats it as terminal.

    ``client_auth="basic"`` sends the client id/secret as HTTP Basic (RFC 6749 §2.3.1, the
    recommended way); ``"body"`` sends them as form fields, which some gateways insist on.
    The token request goes through the same httpx client, so it gets the same TLS settings.
    """

    requires_request_body = True  # a request retried after a 401 must be resendable
    requires_response_body = True  # the token response must be read inside the flow

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        client_auth: str = "basic",
        margin_seconds: float = 60.0,
        default_expires_in: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if client_auth not in ("basic", "body"):
            raise ValueError("client_auth must be 'basic' or 'body'")
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._client_auth = client_auth
        self._margin = margin_seconds
        self._default_expires_in = default_expires_in
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        #: How many tokens were fetched (for monitoring and tests; not secret).
        self.tokens_fetched = 0

    def _token_request(self) -> httpx.Request:
        data = {"grant_type": "client_credentials"}
        if self._scope:
            data["scope"] = self._scope
        headers = {"Accept": "application/json"}
        if self._client_auth == "basic":
            raw = f"{quote(self._client_id, safe='')}:{quote(self._client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(raw.encode()).decode("ascii")
        else:
            data["client_id"] = self._client_id
            data["client_secret"] = self._client_secret
        return httpx.Request("POST", self._token_url, data=data, headers=headers)

    def _store_token(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            # The body of a token error is an OAuth error object (no secrets); keep it short.
            raise AuthError(
                f"token endpoint {self._token_url} answered HTTP {response.status_code}: "
                f"{response.text[:200]!r}"
            )
        try:
            payload = response.json()
            token = payload["access_token"]
        except (ValueError, KeyError, TypeError):
            raise AuthError(f"token endpoint {self._token_url} returned no access_token") from None
        expires_in = float(payload.get("expires_in") or self._default_expires_in)
        self._token = str(token)
        self._expires_at = self._clock() + max(0.0, expires_in - self._margin)
        self.tokens_fetched += 1
        log.info("obtained OAuth2 token from %s (valid for %.0f s)", self._token_url, expires_in)

    def _valid_token(self) -> str | None:
        if self._token is not None and self._clock() < self._expires_at:
            return self._token
        return None

    def invalidate(self) -> None:
        """Forget the cached token (the next request fetches a new one)."""
        with self._lock:
            self._token = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach a cached or fresh token; on 401 refresh once and resend."""
        # Holding the lock across the token round trip means concurrent requests wait for
        # one fetch rather than all hitting the token endpoint at once.
        with self._lock:
            token = self._valid_token()
            if token is None:
                self._store_token((yield self._token_request()))
                token = self._token
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            log.info("API answered 401 with a cached token; fetching a new token once")
            with self._lock:
                if self._token == token:  # another thread may already have refreshed it
                    self._store_token((yield self._token_request()))
                token = self._token
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials(token_url={self._token_url!r}, client_id={self._client_id!r}, ***)"
