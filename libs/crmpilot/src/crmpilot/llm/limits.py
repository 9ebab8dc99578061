"""Client-side limits shared by every task in a process: concurrency, requests/minute, tokens/minute.

One :class:`Limiter` per process (the :class:`~crmpilot.llm.client.LLMClient`
holds it; pass the same instance to several clients to share it). Each request
waits for a concurrency slot (``asyncio.Semaphore``), then for one request of
the RPM budget and its *estimated* tokens of the TPM budget; after the call the
reservation is settled with the real usage (refunding or charging the
difference), so a process runs at its quota without tripping it.

The buckets are hand-written: ``aiolimiter`` (the usual asyncio choice) can take
a variable amount but cannot refund or charge after the fact, and the TPM budget
needs exactly that "estimate, then correct" step. A bucket holds one minute of
budget and refills continuously; waiting is FIFO (``asyncio.Lock`` is fair).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from crmpilot.llm.errors import LLMBudgetExceeded, LLMDeadlineExceeded

__all__ = ["TokenBucket", "Limiter", "Reservation"]

Clock = Callable[[], float]


class TokenBucket:
    """``per_minute`` units refilled continuously (``per_minute / 60`` per second), holding at most ``burst``.

    ``burst`` defaults to a minute's worth. A request larger than ``burst`` (but
    not than ``per_minute``) waits for a full bucket and leaves it in debt, so
    big requests are never starved and the average rate still holds.
    """

    def __init__(self, per_minute: float, *, burst: float | None = None, clock: Clock = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.per_minute = float(per_minute)
        self.capacity = float(burst) if burst is not None else self.per_minute
        self.rate = self.per_minute / 60.0
        self._clock = clock
        self._level = self.capacity
        self._stamp = clock()
        self._lock = asyncio.Lock()

    @property
    def level(self) -> float:
        self._refill()
        return self._level

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, amount: float, *, deadline: float | None = None) -> None:
        """Take ``amount``, waiting in line for it; ``deadline`` is on the bucket's clock."""
        if amount > self.per_minute:
            raise LLMBudgetExceeded(f"a request of {amount:.0f} exceeds the per-minute budget of {self.per_minute:.0f}")
        need = min(amount, self.capacity)
        async with self._lock:
            while True:
                self._refill()
                if self._level >= need:
                    self._level -= amount
                    return
                wait = (need - self._level) / self.rate
                if deadline is not None and self._clock() + wait > deadline:
                    raise LLMDeadlineExceeded("the rate-limit budget frees up only after the call's deadline")
                await asyncio.sleep(wait)

    def adjust(self, delta: float) -> None:
        """Charge ``delta`` more (or refund when negative) after the fact; the level may go below zero."""
        self._refill()
        self._level = min(self.capacity, self._level - delta)


class Reservation:
    """What one request reserved; :meth:`settle` corrects it with what the call really used."""

    __slots__ = ("_limiter", "tokens", "_settled")

    def __init__(self, limiter: Limiter, tokens: int) -> None:
        self._limiter = limiter
        self.tokens = tokens
        self._settled = False

    def settle(self, *, tokens: int, requests: int = 1) -> None:
        if self._settled:
            return
        self._settled = True
        if self._limiter.tpm is not None:
            self._limiter.tpm.adjust(tokens - self.tokens)
        if self._limiter.rpm is not None and requests != 1:
            self._limiter.rpm.adjust(requests - 1)


class Limiter:
    """Concurrency cap plus optional RPM and TPM budgets; ``None`` disables a limit.

    ``burst_seconds``: how much budget may be spent at once, in seconds of quota
    (10 s of a 600 RPM budget is 100 requests); smaller paces more evenly, which
    matters because providers enforce per-minute limits over shorter windows.
    """

    def __init__(
        self,
        *,
        max_concurrency: int | None = 8,
        rpm: float | None = None,
        tpm: float | None = None,
        burst_seconds: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.max_concurrency = max_concurrency
        self._sem = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self.rpm = TokenBucket(rpm, burst=max(1.0, rpm * burst_seconds / 60), clock=clock) if rpm else None
        self.tpm = TokenBucket(tpm, burst=tpm * burst_seconds / 60, clock=clock) if tpm else None
        self._clock = clock
        self.in_flight = 0
        self.max_in_flight = 0

    @asynccontextmanager
    async def reserve(self, tokens: int, *, deadline: float | None = None) -> AsyncIterator[Reservation]:
        """Hold a slot and budget for one request of about ``tokens`` tokens."""
        if self.tpm is not None and tokens > self.tpm.per_minute:
            raise LLMBudgetExceeded(
                f"the request needs about {tokens} tokens; the budget is {self.tpm.per_minute:.0f}/min"
            )
        if self._sem is not None:
            remaining = None if deadline is None else max(0.0, deadline - self._clock())
            try:
                async with asyncio.timeout(remaining):
                    await self._sem.acquire()
            except TimeoutError:
                raise LLMDeadlineExceeded("no concurrency slot freed up before the call's deadline") from None
        try:
            if self.rpm is not None:
                await self.rpm.acquire(1, deadline=deadline)
            if self.tpm is not None:
                await self.tpm.acquire(tokens, deadline=deadline)
            reservation = Reservation(self, tokens)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                yield reservation
            finally:
                self.in_flight -= 1
        finally:
            if self._sem is not None:
                self._sem.release()
