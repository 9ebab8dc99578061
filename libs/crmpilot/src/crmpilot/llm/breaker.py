"""A circuit breaker per endpoint: stop calling a model that keeps failing, try again later.

Closed → (``failure_threshold`` consecutive failures) → open → (``reset_timeout``
seconds) → half-open: one trial call; its success closes the circuit, its failure
opens it again. Only "unavailable" failures count (5xx, timeouts, connection
errors); rate limits, bad requests and invalid answers say nothing about the
endpoint's health. While a circuit is open the client moves to the next
provider of the fallback chain.

Hand-written because the maintained async breakers on PyPI (``aiobreaker``,
``purgatory``) wrap callables with their own exception policy; this one is
thirty lines driven explicitly by the client, which already classifies errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from crmpilot.llm.errors import LLMCircuitOpen

__all__ = ["CircuitBreaker", "BreakerState"]

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        name: str = "",
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_timeout:
            return "half_open"
        return "open"

    def retry_in(self) -> float:
        """Seconds until a trial call is allowed (0 when closed or half-open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.reset_timeout - (self._clock() - self._opened_at))

    def before_call(self) -> None:
        """Raise :class:`LLMCircuitOpen` unless a call may go out now."""
        state = self.state
        if state == "closed":
            return
        if state == "half_open" and not self._trial:
            self._trial = True
            return
        raise LLMCircuitOpen(
            f"circuit for {self.name or 'endpoint'} is open", retry_after=self.retry_in() or self.reset_timeout
        )

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._trial or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._trial = False

    def release(self) -> None:
        """End a trial that neither succeeded nor failed the endpoint (e.g. a bad request)."""
        self._trial = False
