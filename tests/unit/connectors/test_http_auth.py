"""Auth classes: canonical string and signature, bearer, OAuth2 caching / expiry / 401 refresh.

The HTTP side uses ``httpx.MockTransport`` (no network); the loopback-server versions of these
checks live in tests/integration/test_rest.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs

import httpx
import pytest
from huiju_connectors.http_auth import (
    AuthError,
    BearerAuth,
    HmacAuth,
    HmacHeaders,
    OAuth2ClientCredentials,
    canonical_query,
    canonical_request,
    hmac_signature,
)


def test_canonical_request_layout() -> None:
    body = b'{"a":1}'
    text = canonical_request("get", "/api/v1/人口", [("b", "2"), ("a", "x y"), ("a", "1")], "1700000000000", "n1", body)
    assert text.split("\n") == [
        "GET",
        "/api/v1/人口",
        "a=1&a=x%20y&b=2",
        "1700000000000",
        "n1",
        hashlib.sha256(body).hexdigest(),
    ]
    assert canonical_query([]) == "" and canonical_query([("k", "江北/1")]) == "k=%E6%B1%9F%E5%8C%97%2F1"


def test_hmac_signature_is_base64_hmac_sha256() -> None:
    expected = base64.b64encode(hmac.new(b"secret", b"msg", hashlib.sha256).digest()).decode()
    assert hmac_signature("secret", "msg") == expected


def _echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"headers": dict(request.headers)})


def test_hmac_auth_headers_and_signature_over_the_wire() -> None:
    auth = HmacAuth("key-1", "secret-1", clock=lambda: 1_700_000_000.123, nonce_factory=lambda: "abc")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as client:
        client.post("https://gw.example/api/x?z=1&a=2", content=b"payload")
    r = seen[0]
    assert r.headers["X-App-Key"] == "key-1" and r.headers["X-Timestamp"] == "1700000000123"
    assert r.headers["X-Nonce"] == "abc"
    canonical = "\n".join(["POST", "/api/x", "a=2&z=1", "1700000000123", "abc", hashlib.sha256(b"payload").hexdigest()])
    assert r.headers["X-Signature"] == hmac_signature("secret-1", canonical)
    assert "secret-1" not in repr(auth)


def test_hmac_header_names_are_configurable_and_nonce_is_fresh() -> None:
    auth = HmacAuth("k", "s", headers=HmacHeaders(app_key="appKey", timestamp="ts", nonce="nonce", signature="sign"))
    nonces = []
    for _ in range(2):
        request = next(auth.auth_flow(httpx.Request("GET", "https://gw.example/p")))
        assert {"appkey", "ts", "nonce", "sign"} <= set(request.headers.keys())
        nonces.append(request.headers["nonce"])
    assert nonces[0] != nonces[1] and len(nonces[0]) == 32


def test_bearer() -> None:
    request = next(BearerAuth("tk-9f8e").auth_flow(httpx.Request("GET", "https://x/")))
    assert request.headers["Authorization"] == "Bearer tk-9f8e" and "tk-9f8e" not in repr(BearerAuth("tk-9f8e"))
    with pytest.raises(ValueError):
        BearerAuth("")


class FakeOAuth:
    """Token endpoint + API on a MockTransport."""

    def __init__(self, expires_in: int = 100) -> None:
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.api_calls = 0
        self.token_forms: list[dict[str, list[str]]] = []
        self.token_auth: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            self.token_forms.append(parse_qs(request.content.decode()))
            self.token_auth.append(request.headers.get("Authorization"))
            token = f"t{len(self.issued)}"
            self.issued.append(token)
            self.valid.add(token)
            return httpx.Response(200, json={"access_token": token, "expires_in": self.expires_in})
        self.api_calls += 1
        token = request.headers.get("Authorization", "")[7:]
        return httpx.Response(200 if token in self.valid else 401, json={"token": token})


def test_oauth2_caches_until_expiry_minus_margin() -> None:
    fake, now = FakeOAuth(expires_in=100), [0.0]
    auth = OAuth2ClientCredentials("https://idp/token", "cid", "csecret", scope="read", margin_seconds=10,
                                   clock=lambda: now[0])
    with httpx.Client(transport=httpx.MockTransport(fake), auth=auth) as client:
        assert client.get("https://api/x").json() == {"token": "t0"}
        now[0] = 89.0
        assert client.get("https://api/x").json() == {"token": "t0"}
        now[0] = 90.0  # 100 s minus the 10 s margin: renew before the gateway would refuse it
        assert client.get("https://api/x").json() == {"token": "t1"}
    assert fake.token_forms[0] == {"grant_type": ["client_credentials"], "scope": ["read"]}
    assert fake.token_auth[0] == "Basic " + base64.b64encode(b"cid:csecret").decode()
    assert auth.tokens_fetched == 2 and "csecret" not in repr(auth)


def test_oauth2_refreshes_once_on_401_then_gives_the_401_back() -> None:
    fake = FakeOAuth()
    auth = OAuth2ClientCredentials("https://idp/token", "cid", "csecret", client_auth="body")
    with httpx.Client(transport=httpx.MockTransport(fake), auth=auth) as client:
        client.get("https://api/x")
        fake.valid.clear()  # revoked
        assert client.get("https://api/x").json() == {"token": "t1"}
        assert fake.token_forms[1]["client_secret"] == ["csecret"] and fake.token_auth[1] is None

        # A gateway that rejects every token: one refresh, then the 401 is the caller's to handle.
        fake.valid = set()
        original = fake.__call__

        def reject_all(request: httpx.Request) -> httpx.Response:
            response = original(request)
            fake.valid.clear()
            return response

        client._transport = httpx.MockTransport(reject_all)
        before = len(fake.issued)
        assert client.get("https://api/x").status_code == 401
        assert len(fake.issued) == before + 1


def test_oauth2_token_endpoint_errors_are_auth_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=json.dumps({"error": "invalid_client"}).encode())

    auth = OAuth2ClientCredentials("https://idp/token", "cid", "wrong")
    with httpx.Client(transport=httpx.MockTransport(refuse), auth=auth) as client, pytest.raises(
        AuthError, match="HTTP 400"
    ) as err:
        client.get("https://api/x")
    assert "wrong" not in str(err.value)

    def no_token(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"token_type": "bearer"})

    auth = OAuth2ClientCredentials("https://idp/token", "cid", "s")
    with httpx.Client(transport=httpx.MockTransport(no_token), auth=auth) as client, pytest.raises(
        AuthError, match="no access_token"
    ):
        client.get("https://api/x")
