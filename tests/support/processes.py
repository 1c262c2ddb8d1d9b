"""A worker process killed on purpose: SIGKILL once it has reached the point a test wants."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable


def kill_when(worker: subprocess.Popen[str], reached: Callable[[], bool], within: float = 60.0) -> None:
    """SIGKILL ``worker`` once ``reached()`` holds, which it must within ``within`` seconds.

    Fails with the worker's stderr if it exited first; the worker never outlives the call.
    """
    deadline = time.monotonic() + within
    try:
        while not reached() and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.05)
        assert reached(), worker.stderr.read() if worker.poll() is not None and worker.stderr else "worker stuck"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
