"""Retry delays: exponential with jitter, capped, ``retry_after`` honoured."""

from __future__ import annotations

import pytest

from crmpilot.streaming.retry import backoff_delay


def test_delay_grows_and_is_capped() -> None:
    lo = [backoff_delay(n, initial=0.5, maximum=8, multiplier=2, rand=lambda: 0.0) for n in range(1, 8)]
    hi = [backoff_delay(n, initial=0.5, maximum=8, multiplier=2, rand=lambda: 1.0) for n in range(1, 8)]
    assert hi == [0.5, 1, 2, 4, 8, 8, 8]
    assert lo == [h / 2 for h in hi]  # jitter keeps at least half of the ceiling


def test_retry_after_wins_when_longer() -> None:
    assert backoff_delay(1, initial=0.5, maximum=8, multiplier=2, retry_after=3.0) == 3.0
    assert backoff_delay(5, initial=0.5, maximum=8, multiplier=2, retry_after=0.1, rand=lambda: 1.0) == 8


def test_huge_attempt_counts_do_not_overflow() -> None:
    assert backoff_delay(10_000, initial=1, maximum=30, multiplier=10, rand=lambda: 1.0) == 30


def test_failures_count_from_one() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0, initial=1, maximum=2, multiplier=2)
