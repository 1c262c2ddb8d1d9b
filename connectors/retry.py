"""One retry policy for every connector: how many attempts, and how long to wait between them.

Each source gets a :class:`RetryPolicy` (from its settings: ``attempts``); each connector says
which failures are worth another attempt (a timeout, a dropped connection, HTTP 5xx or 429, a
SOAP server fault) and what to do between attempts (reconnect, resume a download). The waits
are exponential with full jitter — uniform in ``[0, min(max_delay, base_delay * 2**(n-1))]``
before retry ``n`` — so many workers retrying a struggling department server spread out instead
of arriving in waves; a server's ``Retry-After`` (an exception's ``retry_after``) is honoured
instead, up to ``max_retry_after``. Built on tenacity.

A call that fails with something not worth retrying (a refused login, an untrusted certificate,
HTTP 400) raises at once; one whose every attempt failed raises :class:`GaveUp` with the last
failure, which the connector turns into its own error.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

__all__ = ["AsyncRetrier", "GaveUp", "Retrier", "RetryPolicy"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What a retrier says it is doing, in its log lines (a text, or a function making it only when needed).
Describe = str | Callable[[], str]


class GaveUp(Exception):
    """Every attempt failed with a failure worth retrying; ``last`` is the last of them."""

    def __init__(self, attempts: int, last: BaseException | None) -> None:
        super().__init__(f"gave up after {attempts} attempts; last: {last}")
        self.attempts = attempts
        self.last = last


@dataclass(frozen=True)
class RetryPolicy:
    """How often a connector tries one operation, and how long it waits in between (see the module docstring)."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): full jitter."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return rng() * ceiling

    def retrier(self, retry_on: Callable[[BaseException], bool], *, sleep: Callable[[float], None] = time.sleep,
                rng: Callable[[], float] = random.random, logger: logging.Logger = log) -> Retrier:
        """A :class:`Retrier` running calls under this policy (one per connection or run: it is reused)."""
        return Retrier(self, retry_on, sleep=sleep, rng=rng, logger=logger)

    def async_retrier(self, retry_on: Callable[[BaseException], bool], *,
                      sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                      rng: Callable[[], float] = random.random, logger: logging.Logger = log) -> AsyncRetrier:
        """The same for coroutines: waits with ``await sleep(...)``."""
        return AsyncRetrier(self, retry_on, sleep=sleep, rng=rng, logger=logger)


class _Attempts:
    """What both retriers share: the wait before each retry, its log line, and the give-up."""

    def __init__(self, policy: RetryPolicy, rng: Callable[[], float], logger: logging.Logger) -> None:
        self.policy = policy
        self._rng = rng
        self._logger = logger
        self._describe: Describe = ""

    def options(self, retry_on: Callable[[BaseException], bool]) -> dict[str, Any]:
        """tenacity's arguments for this policy."""
        return {"stop": tenacity.stop_after_attempt(self.policy.attempts), "wait": self._wait,
                "retry": tenacity.retry_if_exception(retry_on), "before_sleep": self._log, "reraise": False}

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(failure, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.policy.max_retry_after)
        return self.policy.backoff(state.attempt_number, self._rng)

    def _log(self, state: tenacity.RetryCallState) -> None:
        what = self._describe() if callable(self._describe) else self._describe
        failure = state.outcome.exception() if state.outcome is not None else None
        self._logger.warning("%s attempt %d/%d: %s; retrying in %.2f s", what, state.attempt_number,
                             self.policy.attempts, failure, state.upcoming_sleep)

    def gave_up(self, exhausted: tenacity.RetryError) -> GaveUp:
        """The :class:`GaveUp` for tenacity's give-up."""
        return GaveUp(self.policy.attempts, exhausted.last_attempt.exception())


class Retrier(_Attempts):
    """Runs calls under a :class:`RetryPolicy`, retrying the failures ``retry_on`` accepts."""

    def __init__(self, policy: RetryPolicy, retry_on: Callable[[BaseException], bool], *,
                 sleep: Callable[[float], None], rng: Callable[[], float], logger: logging.Logger) -> None:
        super().__init__(policy, rng, logger)
        self._retrying = tenacity.Retrying(sleep=sleep, **self.options(retry_on))

    def __call__(self, attempt: Callable[[], T], describe: Describe) -> T:
        """``attempt()``, again after each failure worth retrying; raises :class:`GaveUp` when none is left."""
        self._describe = describe
        try:
            return self._retrying(attempt)
        except tenacity.RetryError as exhausted:
            raise self.gave_up(exhausted) from exhausted.last_attempt.exception()


class AsyncRetrier(_Attempts):
    """:class:`Retrier` for coroutines."""

    def __init__(self, policy: RetryPolicy, retry_on: Callable[[BaseException], bool], *,
                 sleep: Callable[[float], Awaitable[Any]], rng: Callable[[], float], logger: logging.Logger) -> None:
        super().__init__(policy, rng, logger)
        self._retrying = tenacity.AsyncRetrying(sleep=sleep, **self.options(retry_on))

    async def __call__(self, attempt: Callable[[], Awaitable[T]], describe: Describe) -> T:
        """``await attempt()``, again after each failure worth retrying; raises :class:`GaveUp` when none is left."""
        self._describe = describe
        try:
            return await self._retrying(attempt)
        except tenacity.RetryError as exhausted:
            raise self.gave_up(exhausted) from exhausted.last_attempt.exception()
