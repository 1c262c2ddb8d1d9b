"""Is the PostgreSQL server patched? Its version against the latest minor release of its major.

Minor releases carry PostgreSQL's security fixes (every quarter: February, May, August, November),
and the embedded server is whatever the ``pgserver`` wheel bundles (PostgreSQL 16.2 in pgserver
0.1.4, far behind). No release feed is reachable from our machines, so the latest minor of each
major is recorded here by hand with the date (:data:`LATEST_MINOR`, :data:`RECORDED`): update both
on each quarterly release. ``huiju check-config``, ``huiju up`` and ``huiju demo`` print a warning
when the server is older; the README (Security and privacy) says how to run on a patched server.
"""

from __future__ import annotations

import re
import subprocess
import warnings
from pathlib import Path

import psycopg

from huiju.settings import get_settings

#: The latest minor release of each supported PostgreSQL major, as published when :data:`RECORDED`.
LATEST_MINOR: dict[int, int] = {14: 23, 15: 18, 16: 14, 17: 10, 18: 4}
#: When :data:`LATEST_MINOR` was last checked by hand (update it on each quarterly release).
RECORDED = "2026-12-07"

_VERSION = re.compile(r"(\d+)\.(\d+)")


def parse_version(text: str) -> tuple[int, int]:
    """``(major, minor)`` from ``postgres --version`` output or ``server_version`` (``16.2 (Debian …)``)."""
    match = _VERSION.search(text)
    if match is None:
        raise ValueError(f"no PostgreSQL version in {text!r}")
    return int(match.group(1)), int(match.group(2))


def release_problem(version: tuple[int, int]) -> str | None:
    """Why this server version is not a patched one (None when it is the latest minor of a supported major)."""
    major, minor = version
    latest = LATEST_MINOR.get(major)
    if latest is None:
        newest = max(LATEST_MINOR)
        if major > newest:
            return None  # newer than anything recorded: the table is what is out of date, not the server
        return (f"PostgreSQL {major}.{minor} is a major release no longer supported (supported: "
                f"{', '.join(map(str, sorted(LATEST_MINOR)))}; recorded {RECORDED})")
    if minor < latest:
        return (f"PostgreSQL {major}.{minor} is older than {major}.{latest}, the latest minor release of {major} "
                f"(recorded {RECORDED}): it misses security fixes; run on a patched server (README: Security and "
                "privacy) or upgrade this one")
    return None


def embedded_binary() -> Path:
    """The ``postgres`` binary the ``pgserver`` wheel bundles (the embedded server)."""
    # pgserver asks platformdirs for a runtime dir on import; without XDG_RUNTIME_DIR it warns (harmless).
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver  # why: only needed when no server is configured

    return Path(pgserver.__file__).parent / "pginstall" / "bin" / "postgres"


def server_version(url: str | None = None) -> tuple[int, int]:
    """The version of the server the platform uses: the configured one (asked), else the embedded binary's.

    The embedded server is not started for this: its binary says its version. The configured one is asked by
    the validation's login role (huiju.warehouse), never by the admin in ``HUIJU_WAREHOUSE_URL``.
    """
    if url or get_settings().warehouse_url:
        from huiju.warehouse import role_url  # why: the embedded server's check needs no warehouse at all

        with psycopg.connect(role_url("validation", url), connect_timeout=5) as conn:
            return parse_version(str(conn.execute("show server_version").fetchone()[0]))
    done = subprocess.run([str(embedded_binary()), "--version"], capture_output=True, text=True, timeout=30,
                          check=True)
    return parse_version(done.stdout)


def release_warning(url: str | None = None) -> str | None:
    """A one-line warning when the platform's PostgreSQL is not patched (or cannot be checked); else None."""
    try:
        version = server_version(url)
    except (OSError, psycopg.Error, subprocess.SubprocessError, ValueError) as exc:
        return f"could not check the PostgreSQL server's version: {type(exc).__name__}"
    problem = release_problem(version)
    if problem is None:
        return None
    where = "the external server (HUIJU_WAREHOUSE_URL)" if (url or get_settings().warehouse_url) else \
        "the embedded server (pgserver)"
    return f"{problem} [{where}]"
