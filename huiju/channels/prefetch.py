"""Fetching in a child process while the parent lands: a source and a destination joined by a pipe.

The two halves of a web-service run are Python work — fetching (HTTP, hashing, checking bodies)
on one side, landing (the ledger, ``COPY``, archive packs) on the other — and as two threads of
one interpreter they take turns on its lock. :class:`Prefetch` forks a child that runs the
iterator of prepared pages and sends each down a pipe; a thread of the parent reads them, has
``finish`` complete each (what costs less to do here than to send), and queues them.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Prefetch(Generic[T]):
    """Fetch and prepare the next pages in a child process while earlier ones land (see the module docstring).

    The two halves of a run are Python work — fetching (HTTP, JSON decoding) and preparing
    (hashes, drift, COPY text) on one side, landing (the ledger, ``COPY``, archive packs) on the
    other — and as two threads of one interpreter they take turns on its lock: a run of 2,000
    pages went at the speed of their sum on a machine with a core to spare. So, as a source
    and a destination connected by a pipe: the child is forked, inheriting the (not yet
    started) iterator of prepared pages and everything imported, and sends each page pickled
    — its records as COPY text or left in its JSON body, never pickled as objects — down a
    pipe; a thread here reads them, has ``finish`` render those left in their body (decoding
    JSON in C costs less than unpickling objects, and this process has time to spare while the
    database works), and queues them at most ``depth`` pages ahead. The child dies with
    the process that started it (``PR_SET_PDEATHSIG``): a collector killed mid-run leaves no
    fetcher behind.

    Safe for exactly-once: each page's cursor is computed by the connector from the pages
    before it, not from what was landed, and a page fetched but never landed (crash, error)
    is simply fetched again by the next run.
    """

    #: What :meth:`next` returns when no page arrived in time.
    LATER = object()

    def __init__(self, prepared: Iterator[T], finish: Callable[[T], T], depth: int = 64) -> None:
        read_end, write_end = os.pipe()
        with contextlib.suppress(OSError, AttributeError):  # fewer wake-ups per page than the default 64 KiB
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 1 << 20)
        context = multiprocessing.get_context("fork")  # the iterator and its HTTP client cannot be pickled
        self._child = context.Process(target=_send_pages, args=(prepared, read_end, write_end, os.getpid()),
                                      name="huiju-fetch", daemon=True)
        self._child.start()
        os.close(write_end)
        self._pipe = open(read_end, "rb", buffering=1 << 20)  # noqa: SIM115 - closed by close()
        self._slots: queue.Queue[tuple] = queue.Queue(maxsize=depth)
        self._done = False
        self._finish = finish
        self._reader = threading.Thread(target=self._read, name="huiju-fetch-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            header = self._pipe.read(8)
            if len(header) < 8:  # the child is gone without a word (killed, out of memory)
                self._slots.put(("gone",))
                return
            item = pickle.loads(self._pipe.read(int.from_bytes(header, "little")))  # noqa: S301 - our own child
            if item[0] == "page":
                try:
                    item = ("page", self._finish(item[1]))
                except Exception as exc:  # raised to the collector, in order, in place of the page
                    item = ("failed", exc)
            self._slots.put(item)
            if item[0] != "page":
                return

    def next(self, timeout: float) -> T | object | None:
        """The next prepared page, ``None`` after the last one.

        :attr:`LATER` when none arrived within ``timeout`` seconds; raises what the connector raised.
        """
        if self._done:
            return None
        try:
            kind, *item = self._slots.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return self.LATER
        if kind == "page":
            return item[0]
        self._done = True
        if kind == "error":
            raise _rebuilt(*item)
        if kind == "failed":
            raise item[0]
        if kind == "gone":
            self._child.join(timeout=5)
            raise RuntimeError(f"the page fetcher stopped unexpectedly (exit code {self._child.exitcode})")
        return None

    def close(self) -> None:
        """Stop fetching (pages not taken are dropped; the next run fetches them again)."""
        if self._child.is_alive():  # done, or fetching pages nobody will take
            self._child.kill()
        self._child.join(timeout=5)
        while self._reader.is_alive():  # it may wait for room in a full queue
            with contextlib.suppress(queue.Empty):
                self._slots.get_nowait()
            self._reader.join(timeout=0.05)
        self._pipe.close()


def _send_pages(prepared: Iterator[Any], read_end: int, write_end: int, parent: int) -> None:
    """The fetching child: every prepared page down the pipe, then ``done`` or the error."""
    os.close(read_end)
    _die_with(parent)

    def send(item: tuple) -> None:
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(len(data).to_bytes(8, "little") + data)
        while view:
            view = view[os.write(write_end, view):]

    try:
        for page in prepared:
            send(("page", page))
        send(("done",))
    except BrokenPipeError:  # the parent stopped reading
        return
    except BaseException as exc:  # handed over to the parent, raised there
        with contextlib.suppress(BrokenPipeError):
            send(("error", *_portable(exc)))


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``)."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the parent's close() still stops the child
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _portable(error: BaseException) -> tuple[type[BaseException], tuple, dict, str]:
    """An exception as plain parts that survive pickling (connector errors have keyword-only arguments)."""
    return type(error), error.args, dict(vars(error)), "".join(traceback.format_exception(error))


def _rebuilt(kind: type[BaseException], args: tuple, state: dict, trace: str) -> BaseException:
    """The exception the fetching child raised, with its attributes and its traceback as a note."""
    error = kind.__new__(kind, *args)
    error.args = args
    vars(error).update(state)
    error.add_note(f"raised in the page fetcher:\n{trace}")
    return error
