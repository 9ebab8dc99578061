"""What one KPI window keeps: counts, review decisions, cost, tokens and a latency sketch.

:class:`WindowStats` is the value of a faust windowed-table entry. It round-trips
through plain JSON (:meth:`WindowStats.to_json` / :meth:`WindowStats.from_json`)
because faust writes every table value to a changelog topic.

p95 latency comes from :class:`LatencySketch`, a DDSketch-style logarithmic
histogram written here instead of taken from the ``ddsketch`` package because
this service may not add dependencies and the part needed is 40 lines: any
quantile within 1 % relative error, bounded memory (at most
:data:`LatencySketch.MAX_BUCKETS` buckets whatever the count), mergeable, and
independent of arrival order, so replaying a topic gives the same p95.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from crmpilot.events import ReviewDecision

__all__ = ["LatencySketch", "WindowStats"]

_ACCURACY = 0.01
_GAMMA = (1 + _ACCURACY) / (1 - _ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_MIN_MS = 1e-3  # at or below: counted as zero
_MAX_MS = 1e8  # above: clamped (27 hours)


def _index(value_ms: float) -> int:
    return math.ceil(math.log(min(value_ms, _MAX_MS)) / _LOG_GAMMA)


@dataclass(slots=True)
class LatencySketch:
    """Latencies in milliseconds, kept as counts per logarithmic bucket."""

    MAX_BUCKETS = _index(_MAX_MS) - _index(_MIN_MS) + 1
    """The most buckets a sketch can hold, whatever the number of values."""

    buckets: dict[int, int] = field(default_factory=dict)
    zero: int = 0
    min: float = math.inf
    max: float = 0.0

    @property
    def count(self) -> int:
        return self.zero + sum(self.buckets.values())

    def add(self, value_ms: float) -> None:
        if value_ms <= _MIN_MS:
            self.zero += 1
        else:
            i = _index(value_ms)
            self.buckets[i] = self.buckets.get(i, 0) + 1
        self.min = min(self.min, value_ms)
        self.max = max(self.max, value_ms)

    def quantile(self, q: float) -> float | None:
        """The nearest-rank ``q`` quantile (within 1 %), or ``None`` when empty."""
        n = self.count
        if n == 0:
            return None
        rank = max(1, math.ceil(q * n))
        seen = self.zero
        if seen >= rank:
            return self.min
        for i in sorted(self.buckets):
            seen += self.buckets[i]
            if seen >= rank:
                break
        estimate = 2 * _GAMMA**i / (_GAMMA + 1)
        return min(max(estimate, self.min), self.max)

    def to_json(self) -> dict[str, Any]:
        return {
            "buckets": {str(i): c for i, c in self.buckets.items()},
            "zero": self.zero,
            "min": None if self.min == math.inf else self.min,
            "max": self.max,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LatencySketch:
        low = data.get("min")
        return cls(
            buckets={int(i): int(c) for i, c in data.get("buckets", {}).items()},
            zero=int(data.get("zero", 0)),
            min=math.inf if low is None else float(low),
            max=float(data.get("max", 0.0)),
        )


@dataclass(slots=True)
class WindowStats:
    """The aggregate of the results that fell into one window for one task and dimension."""

    results: int = 0
    auto_apply: int = 0
    suggest: int = 0
    skip: int = 0
    cache_hits: int = 0
    cost_usd: Decimal = Decimal(0)
    tokens_in: int = 0
    tokens_out: int = 0
    latency: LatencySketch = field(default_factory=LatencySketch)

    def add(
        self,
        *,
        review: ReviewDecision,
        latency_ms: float,
        cost_usd: Decimal,
        tokens_in: int,
        tokens_out: int,
        cache_hit: bool,
    ) -> None:
        self.results += 1
        if review == "auto_apply":
            self.auto_apply += 1
        elif review == "suggest":
            self.suggest += 1
        else:
            self.skip += 1
        self.cache_hits += cache_hit
        self.cost_usd += cost_usd
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        self.latency.add(latency_ms)

    @property
    def automation_rate(self) -> float | None:
        """Share of results applied automatically (0..1), ``None`` for an empty window."""
        return self.auto_apply / self.results if self.results else None

    @property
    def p95_latency_ms(self) -> float | None:
        return self.latency.quantile(0.95)

    def to_json(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "auto_apply": self.auto_apply,
            "suggest": self.suggest,
            "skip": self.skip,
            "cache_hits": self.cache_hits,
            "cost_usd": str(self.cost_usd),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "latency": self.latency.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WindowStats:
        """The stats stored as ``data``; an empty mapping (a new window) gives empty stats."""
        return cls(
            results=int(data.get("results", 0)),
            auto_apply=int(data.get("auto_apply", 0)),
            suggest=int(data.get("suggest", 0)),
            skip=int(data.get("skip", 0)),
            cache_hits=int(data.get("cache_hits", 0)),
            cost_usd=Decimal(data.get("cost_usd", "0")),
            tokens_in=int(data.get("tokens_in", 0)),
            tokens_out=int(data.get("tokens_out", 0)),
            latency=LatencySketch.from_json(data.get("latency", {})),
        )
