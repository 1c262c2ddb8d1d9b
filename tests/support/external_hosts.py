"""What a page would fetch from another host: the check behind "no request leaves the server" for files read as
text (templates, static assets, generated sites), beside the browser tests that cut the network.

A reference is a URL with a host (``https://…``, ``http://…``, ``//…``) where a page loads or links something:
an HTML attribute (``src``, ``href``, ``action``, ``srcset``, ``poster``, ``data``), CSS (``url(…)``,
``@import``), or a script that sets an element's ``src``/``href`` or fetches. XML namespaces and licence
comments are not references. Loopback hosts are allowed.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_URL = r"""((?:https?:)?//[^"'\s<>()]+)"""
REFERENCES = (
    re.compile(r"""\b(?:src|href|action|poster|srcset|data)\s*=\s*["']?""" + _URL, re.IGNORECASE),
    re.compile(r"""url\(\s*["']?""" + _URL, re.IGNORECASE),
    re.compile(r"""@import\s+["']""" + _URL, re.IGNORECASE),
    re.compile(r"""\.(?:src|href)\s*=\s*["']""" + _URL),
    re.compile(r"""\b(?:fetch|import|importScripts|open)\(\s*["']""" + _URL),
)
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def external_references(text: str) -> list[str]:
    """Every URL in ``text`` that a page would load or link on a host other than this machine (sorted, once)."""
    found = set()
    for pattern in REFERENCES:
        for match in pattern.finditer(text):
            url = match.group(1)
            host = urlsplit(url if "://" in url else "http:" + url).hostname
            if host and host not in LOOPBACK:
                found.add(url)
    return sorted(found)
