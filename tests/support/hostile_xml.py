"""Hostile SOAP answers and a canary address: what the SOAP connector must refuse, and where it must never go.

Test-only fixtures (the connector's tests and the ``soap_hostile`` benchmark), not part of the demo.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from huiju_demo.soap_service import SOAP_ENV

from tests.support.hostile_http import ScriptedServer


def hostile_xml(kind: str, canary_url: str = "http://127.0.0.1:9") -> bytes:
    """A hostile SOAP response: ``xxe`` (external entity), ``billion-laughs`` (entity bomb, 10**9
    expansions) or ``external-dtd`` (a DTD fetched from ``canary_url``, which must never be hit)."""
    body = f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body><x>{{}}</x></soap:Body></soap:Envelope>'
    if kind == "xxe":
        return ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                + body.format("&e;")).encode()
    if kind == "billion-laughs":
        entities = '<!ENTITY lol "lol">' + "".join(
            f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10))
        return (f'<?xml version="1.0"?><!DOCTYPE lolz [{entities}]>' + body.format("&lol9;")).encode()
    if kind == "external-dtd":
        return (f'<?xml version="1.0"?><!DOCTYPE soap:Envelope SYSTEM "{canary_url}/evil.dtd">'
                + body.format("")).encode()
    raise ValueError(f"unknown hostile kind {kind!r} (xxe, billion-laughs, external-dtd)")


HOSTILE_KINDS = ("xxe", "billion-laughs", "external-dtd")


@dataclass
class Canary:
    """An address that must never be contacted (a WSDL import, an external DTD): it records every hit."""

    hits: list[str] = field(default_factory=list)
    url: str = ""

    @contextmanager
    def running(self) -> Iterator[Canary]:
        """Serve on ``127.0.0.1`` (a free port) until the block ends; ``self.url`` is its base URL."""
        def answer(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
            self.hits.append(f"{method} {path}")
            return 200, {}, b'<?xml version="1.0"?><x/>'

        server = ScriptedServer(answer)
        with server.running():
            self.url = server.url
            yield self
