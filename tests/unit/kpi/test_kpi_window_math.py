"""Window math without Kafka: tumbling boundaries, lateness, p95 from the sketch, automation rate."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from crmpilot.events import ReviewDecision
from kpi_aggregator.stats import LatencySketch, WindowStats
from kpi_aggregator.windows import is_late, window_start

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC).timestamp()  # a whole hour


@pytest.mark.parametrize(
    ("size", "offset", "expected"),
    [
        (60, 0.0, 0),  # a window starts at its first instant
        (60, 59.999, 0),  # and ends just before the next one
        (60, 60.0, 60),
        (60, 61.5, 60),
        (3600, 3599.9, 0),
        (3600, 3600.0, 3600),
        (3600, 5400.0, 3600),
    ],
)
def test_tumbling_windows_are_half_open_and_aligned_to_the_epoch(size: int, offset: float, expected: int) -> None:
    assert window_start(size, T0 + offset) == T0 + expected


def test_windows_before_the_retained_ones_are_late() -> None:
    now = T0 + 10 * 60 + 5  # in the 11th minute
    assert not is_late(60, now, now=now, retain=2)
    assert not is_late(60, now - 60, now=now, retain=2)
    assert not is_late(60, T0 + 8 * 60, now=now, retain=2)  # first instant of the oldest retained window
    assert is_late(60, T0 + 8 * 60 - 0.001, now=now, retain=2)
    assert not is_late(60, now + 3600, now=now, retain=2)  # a clock ahead is not late
    assert not is_late(3600, now - 3000, now=now, retain=1)  # the hour before is retained


def test_p95_of_one_to_a_hundred_is_95_within_one_percent() -> None:
    sketch = LatencySketch()
    for value in range(1, 101):
        sketch.add(float(value))
    assert sketch.quantile(0.95) == pytest.approx(95, rel=0.01)
    assert sketch.quantile(0.5) == pytest.approx(50, rel=0.01)
    assert sketch.quantile(1.0) == 100.0  # clamped to the exact maximum
    assert sketch.count == 100


def test_p95_follows_the_nearest_rank() -> None:
    sketch = LatencySketch()
    for value in [10.0] * 95 + [1000.0] * 5:
        sketch.add(value)
    assert sketch.quantile(0.95) == pytest.approx(10, rel=0.01)
    assert sketch.quantile(0.96) == pytest.approx(1000, rel=0.01)


def test_sketch_edge_values() -> None:
    empty = LatencySketch()
    assert empty.quantile(0.95) is None
    zeros = LatencySketch()
    for value in (0.0, 0.0, 2.0):
        zeros.add(value)
    assert zeros.quantile(0.5) == 0.0
    assert zeros.quantile(0.95) == pytest.approx(2.0, rel=0.01)


def test_sketch_is_bounded_and_independent_of_order() -> None:
    rng = random.Random(7)
    values = [10 ** rng.uniform(-4, 10) for _ in range(20_000)]  # 0.1 µs .. 115 days
    forward, backward = LatencySketch(), LatencySketch()
    for value in values:
        forward.add(value)
    for value in reversed(values):
        backward.add(value)
    assert len(forward.buckets) <= LatencySketch.MAX_BUCKETS < 1300
    assert forward.to_json() == backward.to_json()
    exact = sorted(values)[math.ceil(0.95 * len(values)) - 1]
    assert forward.quantile(0.95) == pytest.approx(min(exact, 1e8), rel=0.01)


def test_automation_rate_cost_and_tokens() -> None:
    stats = WindowStats()
    assert stats.automation_rate is None
    assert stats.p95_latency_ms is None
    auto: ReviewDecision = "auto_apply"
    suggest: ReviewDecision = "suggest"
    skip: ReviewDecision = "skip"
    for review in [auto] * 4 + [suggest] * 3 + [skip] * 3:
        stats.add(
            review=review,
            latency_ms=100.0,
            cost_usd=Decimal("0.0015"),
            tokens_in=10,
            tokens_out=2,
            cache_hit=review == "skip",
        )
    assert (stats.results, stats.auto_apply, stats.suggest, stats.skip, stats.cache_hits) == (10, 4, 3, 3, 3)
    assert stats.automation_rate == 0.4
    assert stats.cost_usd == Decimal("0.0150")
    assert (stats.tokens_in, stats.tokens_out) == (100, 20)


def test_window_stats_survive_the_changelog_round_trip() -> None:
    stats = WindowStats()
    for i in range(1, 50):
        stats.add(
            review="suggest",
            latency_ms=i * 3.7,
            cost_usd=Decimal("0.000123"),
            tokens_in=i,
            tokens_out=1,
            cache_hit=False,
        )
    again = WindowStats.from_json(WindowStats.from_json(stats.to_json()).to_json())
    assert again == stats
    assert again.p95_latency_ms == stats.p95_latency_ms
    assert WindowStats.from_json({}) == WindowStats()
