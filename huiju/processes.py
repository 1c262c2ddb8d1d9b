"""Background services ``huiju up`` starts (Airflow's, the portal): is a process alive, has a server come up."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request


def alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def wait_until_healthy(url: str, timeout: float, *, interval: float = 1.0) -> bool:
    """Poll ``url`` (a health endpoint on loopback) until it answers 200 or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own loopback URL
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(interval)
    return False
