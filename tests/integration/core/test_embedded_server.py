"""The embedded PostgreSQL (pgserver) of a checkout with no server configured: ``huiju warehouse --stop`` stops it,
whatever other processes used it before (each left pgserver a handle of its own, a killed one for good)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

START = "from huiju.warehouse import warehouse_url; import psycopg; psycopg.connect(warehouse_url()).close()"


def _huiju(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "huiju.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a stopped daemon nobody reaped is a zombie here: PID 1 of a container may not reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_stop_stops_the_embedded_server_other_processes_used(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HUIJU_", "AIRFLOW"))}
    env["HUIJU_VAR"] = str(tmp_path / "var")
    subprocess.run([sys.executable, "-c", START], env=env, check=True, timeout=300)
    # A process killed while it used the warehouse: its handle stays in pgserver's list for good.
    killed = subprocess.Popen([sys.executable, "-c", START + "; print('connected', flush=True); input()"], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert killed.stdout is not None and killed.stdout.readline().strip() == "connected"
    killed.kill()
    killed.wait()
    pid_file = tmp_path / "var" / "pgdata" / "postmaster.pid"
    assert pid_file.exists()
    postmaster = int(pid_file.read_text().splitlines()[0])
    try:
        stopped = _huiju(env, "warehouse", "--stop")
        assert stopped.returncode == 0, stopped.stderr
        assert "stopped" in stopped.stdout and not pid_file.exists()
        assert not _running(postmaster)
        again = _huiju(env, "warehouse", "--stop")
        assert again.returncode == 0 and "not running" in again.stdout
    finally:
        if pid_file.exists():
            os.kill(postmaster, 15)
