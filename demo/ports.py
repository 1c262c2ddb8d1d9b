"""Loopback ports for the servers the demo, the tests and the benchmarks start."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port free on loopback now (the caller binds it soon after; nothing else here is racing for it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
