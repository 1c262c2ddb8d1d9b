"""The portal's settings, read once from the environment (all optional).

- ``HUIJU_PORTAL_HOST`` / ``HUIJU_PORTAL_PORT``: where it listens (default ``127.0.0.1:8081``);
- ``HUIJU_PORTAL_SECURE_COOKIES``: ``1`` behind HTTPS (cookies get ``Secure``);
- ``HUIJU_PORTAL_TRUSTED_PROXIES``: comma-separated addresses of reverse proxies whose
  ``X-Forwarded-For`` is believed (none by default: the client address is the peer's);
- ``HUIJU_PORTAL_SESSION_IDLE_MINUTES`` (30) / ``HUIJU_PORTAL_SESSION_HOURS`` (12): a session ends
  after that long without a request, or that long after login, whichever comes first;
- ``HUIJU_PORTAL_LOGIN_WINDOW_MINUTES`` (15), ``HUIJU_PORTAL_MAX_FAILURES_PER_ACCOUNT`` (5),
  ``HUIJU_PORTAL_MAX_FAILURES_PER_CLIENT`` (20): login throttling;
- ``HUIJU_PORTAL_AIRFLOW_URL`` (e.g. ``http://127.0.0.1:8080``), ``HUIJU_PORTAL_AIRFLOW_USER``,
  ``HUIJU_PORTAL_AIRFLOW_PASSWORD``: Airflow's API and the account (DAG runs only, no connections)
  the portal asks for a source's ingest run with, once a submission passed validation (see
  :mod:`huiju_portal.ingest_runs`); unset, the batch waits for the source's cadence. ``huiju up``
  sets them for the Airflow it starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from pathlib import Path

from huiju.settings import get_settings, secret_setting

DEFAULT_PORT = 8081


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


@dataclass(frozen=True)
class PortalSettings:
    """Resolved settings of one portal process."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    secure_cookies: bool = False
    trusted_proxies: tuple[str, ...] = ()
    session_idle: timedelta = timedelta(minutes=30)
    session_lifetime: timedelta = timedelta(hours=12)
    login_window: timedelta = timedelta(minutes=15)
    max_failures_per_account: int = 5
    max_failures_per_client: int = 20
    # Form fields and their number are bounded too: a form is never large.
    max_form_bytes: int = 1024 * 1024
    state_dir: Path = field(default_factory=lambda: get_settings().var / "portal")
    airflow_url: str | None = None
    airflow_user: str | None = None
    airflow_password: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """The address people open."""
        return f"http://{self.host}:{self.port}/"

    @property
    def asks_for_runs(self) -> bool:
        """Whether a validated submission asks Airflow for its source's ingest run at once."""
        return bool(self.airflow_url and self.airflow_user and self.airflow_password)

    def environ(self) -> dict[str, str]:
        """These settings as the environment a portal process reads them from (what ``huiju up`` passes on)."""
        values = {"HUIJU_PORTAL_HOST": self.host, "HUIJU_PORTAL_PORT": str(self.port),
                  "HUIJU_PORTAL_AIRFLOW_URL": self.airflow_url, "HUIJU_PORTAL_AIRFLOW_USER": self.airflow_user,
                  "HUIJU_PORTAL_AIRFLOW_PASSWORD": self.airflow_password}
        return {name: value for name, value in values.items() if value}

    @property
    def work_dir(self) -> Path:
        """Where uploads are received before they are checked and landed (same disk as the archive)."""
        return get_settings().var / "work" / "portal"


@cache
def get_portal_settings() -> PortalSettings:
    """The settings of this process, from the environment on first use."""
    proxies = tuple(p.strip() for p in os.environ.get("HUIJU_PORTAL_TRUSTED_PROXIES", "").split(",") if p.strip())
    return PortalSettings(
        host=os.environ.get("HUIJU_PORTAL_HOST") or "127.0.0.1",
        port=_int("HUIJU_PORTAL_PORT", DEFAULT_PORT),
        secure_cookies=os.environ.get("HUIJU_PORTAL_SECURE_COOKIES", "") in ("1", "true", "yes"),
        trusted_proxies=proxies,
        session_idle=timedelta(minutes=_int("HUIJU_PORTAL_SESSION_IDLE_MINUTES", 30)),
        session_lifetime=timedelta(hours=_int("HUIJU_PORTAL_SESSION_HOURS", 12)),
        login_window=timedelta(minutes=_int("HUIJU_PORTAL_LOGIN_WINDOW_MINUTES", 15)),
        max_failures_per_account=_int("HUIJU_PORTAL_MAX_FAILURES_PER_ACCOUNT", 5),
        max_failures_per_client=_int("HUIJU_PORTAL_MAX_FAILURES_PER_CLIENT", 20),
        airflow_url=os.environ.get("HUIJU_PORTAL_AIRFLOW_URL") or None,
        airflow_user=os.environ.get("HUIJU_PORTAL_AIRFLOW_USER") or None,
        airflow_password=secret_setting("HUIJU_PORTAL_AIRFLOW_PASSWORD"),
    )
