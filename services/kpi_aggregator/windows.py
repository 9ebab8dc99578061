"""Tumbling-window arithmetic and the snapshots of changed windows waiting for the warehouse.

Boundaries are faust's own (:class:`faust.windows.TumblingWindow`): a window of
``size`` seconds covers ``[start, start + size)`` with ``start`` a multiple of
``size`` since the epoch (UTC). A table keeps the current window and the
``retain`` before it; a result for an older window is *late* and dropped, so an
expired window is never started again from zero (its warehouse row stays as
last written).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from faust.windows import TumblingWindow

from crmpilot.warehouse.kpi import KpiWindow

from .observation import split_key
from .stats import WindowStats

__all__ = ["PendingWindows", "is_late", "kpi_window", "window_json", "window_start"]


def window_start(size: int, at: float) -> float:
    """Start (epoch seconds) of the window of ``size`` seconds that holds ``at``."""
    start, _ = TumblingWindow(size).current(at)
    return start


def is_late(size: int, at: float, *, now: float, retain: int) -> bool:
    """Whether ``at`` falls before the ``retain`` windows preceding the current one (faust expires those)."""
    return window_start(size, at) < window_start(size, now) - size * retain


def kpi_window(size: int, key: str, start: float, stats: WindowStats) -> KpiWindow:
    """The warehouse record of a table entry (``key`` is ``<task>|<dimension>``)."""
    task, dimension = split_key(key)
    return KpiWindow(
        window_start=datetime.fromtimestamp(start, UTC),
        window_size=size,
        task=task,
        dimension=dimension,
        results=stats.results,
        auto_applied=stats.auto_apply,
        suggested=stats.suggest,
        skipped=stats.skip,
        cache_hits=stats.cache_hits,
        cost_usd=stats.cost_usd,
        tokens_in=stats.tokens_in,
        tokens_out=stats.tokens_out,
        p95_latency_ms=stats.p95_latency_ms,
        max_latency_ms=stats.latency.max if stats.results else None,
    )


def window_json(window: KpiWindow) -> dict[str, Any]:
    """A window as the web server shows it: rates derived, times in ISO 8601 UTC."""
    end = datetime.fromtimestamp(window.window_start.timestamp() + window.window_size, UTC)
    return {
        "window_start": window.window_start.isoformat(),
        "window_end": end.isoformat(),
        "window_size_s": window.window_size,
        "task": window.task,
        "dimension": window.dimension,
        "results": window.results,
        "auto_applied": window.auto_applied,
        "suggested": window.suggested,
        "skipped": window.skipped,
        "automation_rate": round(window.auto_applied / window.results, 4) if window.results else None,
        "p95_latency_ms": window.p95_latency_ms,
        "max_latency_ms": window.max_latency_ms,
        "cache_hits": window.cache_hits,
        "cost_usd": float(window.cost_usd),
        "tokens_in": window.tokens_in,
        "tokens_out": window.tokens_out,
    }


class PendingWindows:
    """The latest snapshot of every window changed since the last flush."""

    def __init__(self) -> None:
        self._latest: dict[tuple[datetime, int, str, str], KpiWindow] = {}

    def __len__(self) -> int:
        return len(self._latest)

    def put(self, window: KpiWindow) -> None:
        self._latest[window.key] = window

    def drain(self) -> list[KpiWindow]:
        """Take every pending snapshot (oldest window first)."""
        taken, self._latest = self._latest, {}
        return sorted(taken.values(), key=lambda w: w.key)

    def give_back(self, windows: Iterable[KpiWindow]) -> None:
        """Return snapshots a failed flush took, unless a newer one arrived meanwhile."""
        for window in windows:
            self._latest.setdefault(window.key, window)
