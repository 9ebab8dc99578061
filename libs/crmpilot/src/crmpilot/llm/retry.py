"""When to retry a model call and how long to wait: a tenacity policy that honours Retry-After.

Retries only :class:`~crmpilot.errors.Retryable` errors (429, 5xx, timeouts,
connection resets, an open circuit); never 400/401/403 and never an invalid
answer, which the provider's bounded re-ask has already handled. Waits grow
exponentially with jitter; when the server says when to come back
(``retry-after-ms``, ``Retry-After`` in seconds or as an HTTP date, or
``x-ratelimit-reset-requests``/``-tokens``) the wait is that, plus a little
jitter so a fleet does not return at the same instant. Attempts are bounded and
so is the total time (no attempt starts if its wait would pass the deadline).
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from crmpilot.errors import Retryable

__all__ = ["RetryPolicy", "parse_retry_after", "wait_retry_after"]

_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?)(?P<u>ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(text: str) -> float | None:
    """``"1s"``, ``"6m0s"``, ``"20ms"`` (OpenAI's x-ratelimit-reset-* format) or plain seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = list(_DURATION.finditer(text))
    if not parts or "".join(p.group(0) for p in parts) != text:
        return None
    return sum(float(p["n"]) * _UNIT[p["u"]] for p in parts)


def parse_retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds the server asks us to wait, from the response headers (case-insensitive), or None."""
    h = {k.lower(): v for k, v in headers.items()}
    if (ms := h.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    if (ra := h.get("retry-after")) is not None:
        try:
            return max(0.0, float(ra))
        except ValueError:
            try:
                when = parsedate_to_datetime(ra)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                now = now or datetime.now(UTC)
                return max(0.0, (when - now).total_seconds())
    resets = [
        d
        for k in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
        if (v := h.get(k)) and (d := _duration(v)) is not None
    ]
    return max(resets) if resets else None


class wait_retry_after(wait_base):
    """The server's ``retry_after`` (plus up to 10 % jitter) when the error carries one, else ``fallback``."""

    def __init__(self, fallback: wait_base, *, max_retry_after: float = 120.0) -> None:
        self.fallback = fallback
        self.max_retry_after = max_retry_after

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is None:
            return self.fallback(retry_state)
        base = min(float(retry_after), self.max_retry_after)
        return base + random.uniform(0, min(1.0, 0.1 * base + 0.01))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds of one ``LLMClient.run``: attempts per provider, backoff and total deadline (seconds)."""

    max_attempts: int = 4
    initial_wait: float = 0.5
    max_wait: float = 20.0
    jitter: float = 0.5
    deadline: float = 120.0
    max_retry_after: float = 120.0
    attempt_timeout: float | None = None
    """A backstop around one provider call (the SDK has its own HTTP timeout); None: no backstop."""

    def retrying(
        self,
        *,
        should_retry: Callable[[BaseException], bool] | None = None,
        before_sleep: Callable[[RetryCallState], Awaitable[None] | None] | None = None,
        deadline: float | None = None,
    ) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying`` that re-raises the last error when it gives up."""
        predicate = should_retry or (lambda e: isinstance(e, Retryable))
        kwargs: dict[str, Any] = {}
        if before_sleep is not None:
            kwargs["before_sleep"] = before_sleep
        return AsyncRetrying(
            retry=retry_if_exception(predicate),
            stop=stop_after_attempt(self.max_attempts)
            | stop_before_delay(deadline if deadline is not None else self.deadline),
            wait=wait_retry_after(
                wait_exponential_jitter(multiplier=self.initial_wait, max=self.max_wait, jitter=self.jitter),
                max_retry_after=self.max_retry_after,
            ),
            reraise=True,
            **kwargs,
        )
