"""The process-wide Prometheus registry of a crmpilot process, and get-or-create helpers for its metrics.

Every part of a process (the consumer runtime, the LLM client, the sinks) adds
its metrics to one registry, which a service's ``/metrics`` endpoint renders
(:func:`exposition`). It is prometheus-client's default ``REGISTRY``, so the
process and Python collectors it already carries (CPU seconds, resident
memory, open file descriptors, GC) come with it, and so does anything else
that registers there the usual way.

:func:`counter`, :func:`gauge` and :func:`histogram` return the metric of that
name, creating it on first use: a second client, or a test building its
adapters again, gets the same metric instead of prometheus-client's
"Duplicated timeseries" error; asking for a known name with another type or
other labels is a programming error (``ValueError``). Metrics are labelled by
what varies inside one process (consumer group, topic…); the process itself
(service, instance) is the scrape target's business. Nothing here does I/O:
values are read when scraped.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

__all__ = [
    "LATENCY_BUCKETS",
    "counter",
    "exposition",
    "gauge",
    "histogram",
    "register_collector",
    "registry",
]

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds: from a local commit (milliseconds) to a slow model call with retries (minutes)."""

M = TypeVar("M", bound=MetricWrapperBase)

_lock = threading.Lock()
_metrics: dict[str, MetricWrapperBase] = {}


def registry() -> CollectorRegistry:
    """The registry ``/metrics`` renders."""
    return REGISTRY


def _get_or_create(kind: type[M], name: str, documentation: str, labelnames: Sequence[str], **kwargs: object) -> M:
    with _lock:
        known = _metrics.get(name)
        if known is None:
            created = kind(name, documentation, labelnames=tuple(labelnames), registry=REGISTRY, **kwargs)  # type: ignore[arg-type]  # prometheus_client's metric classes differ in their extra arguments
            _metrics[name] = created
            return created
    if type(known) is not kind or tuple(known._labelnames) != tuple(labelnames):
        raise ValueError(
            f"metric {name!r} exists as a {type(known).__name__} with labels {known._labelnames}, "
            f"not a {kind.__name__} with labels {tuple(labelnames)}"
        )
    return known


def counter(name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
    """The counter ``name`` (exposed as ``<name>_total``)."""
    return _get_or_create(Counter, name, documentation, labelnames)


def gauge(name: str, documentation: str, labelnames: Sequence[str] = ()) -> Gauge:
    return _get_or_create(Gauge, name, documentation, labelnames)


def histogram(
    name: str, documentation: str, labelnames: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
) -> Histogram:
    """The histogram ``name``; ``buckets`` count only when it is created."""
    return _get_or_create(Histogram, name, documentation, labelnames, buckets=tuple(buckets))


def register_collector(collector: Collector) -> None:
    """Register a custom collector (values computed at scrape time); once per collector."""
    REGISTRY.register(collector)


def exposition() -> tuple[bytes, str]:
    """The registry in Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
