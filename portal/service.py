"""Running the portal as a background service: ``huiju up`` starts it beside Airflow, ``huiju down`` stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from huiju.private_files import open_private, write_private
from huiju.processes import alive, wait_until_healthy
from huiju_portal.config import PortalSettings


def _pid_file(settings: PortalSettings) -> Path:
    return settings.state_dir / "run" / "portal.pid"


def log_file(settings: PortalSettings) -> Path:
    """Where the service writes its log."""
    return settings.state_dir / "logs" / "portal.log"


def running_pid(settings: PortalSettings) -> int | None:
    """The pid of the running service started by :func:`start`, or None."""
    path = _pid_file(settings)
    if not path.exists():
        return None
    pid = int(path.read_text(encoding="utf-8").strip() or 0)
    return pid if pid and alive(pid) else None


def start(settings: PortalSettings, timeout: float = 90) -> int:
    """Start the portal in the background (unless it runs) and wait until it answers; its pid.

    Raises RuntimeError with the end of its log if it does not come up in ``timeout`` seconds.
    """
    pid = running_pid(settings)
    if pid is not None:
        return pid
    log_path = log_file(settings)
    env = {**os.environ, **settings.environ()}
    with open_private(log_path) as out:
        process = subprocess.Popen([sys.executable, "-m", "huiju_portal", "serve"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    write_private(_pid_file(settings), str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if wait_until_healthy(settings.address + "healthz", timeout=2, interval=0.5):
            return process.pid
    tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
    stop(settings)
    raise RuntimeError(f"the portal did not come up on {settings.address}; the end of its log:\n{tail}")


def stop(settings: PortalSettings) -> int | None:
    """Stop the service :func:`start` started; the pid it had, or None if it was not running."""
    pid = running_pid(settings)
    path = _pid_file(settings)
    if pid is not None:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(50):
            if not alive(pid):
                break
            time.sleep(0.1)
    path.unlink(missing_ok=True)
    return pid
