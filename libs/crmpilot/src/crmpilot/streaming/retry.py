"""How long a record waits before its next attempt: exponential backoff, jitter, ``retry_after``.

The runtime runs its own attempt loop rather than tenacity's ``AsyncRetrying``
because each turn of the loop routes on crmpilot's error traits (poison goes to
the DLQ without retrying, fatal stops the service), gives back its concurrency
slot while it waits, and must report the number of attempts in the dead-letter
headers; only the delay formula is left, and it is this one function.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["backoff_delay"]


def backoff_delay(
    failures: int,
    *,
    initial: float,
    maximum: float,
    multiplier: float,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after the ``failures``-th failed attempt (1-based).

    The ceiling grows ``initial * multiplier**(failures-1)`` up to ``maximum``; the
    delay is drawn uniformly from the upper half of it ("equal jitter": spread
    out, never near zero). A ``retry_after`` hint from the failing dependency
    (e.g. HTTP 429 ``Retry-After``) wins when it is longer.
    """
    if failures < 1:
        raise ValueError("failures counts from 1")
    ceiling = min(maximum, initial * multiplier ** min(failures - 1, 64))
    delay = ceiling * (0.5 + 0.5 * rand())
    if retry_after is not None and retry_after > delay:
        return retry_after
    return delay
