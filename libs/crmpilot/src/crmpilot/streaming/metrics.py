"""Prometheus metrics of the consumer runtime, in the process registry (:mod:`crmpilot.telemetry.metrics`).

Every metric is labelled by consumer ``group`` (one service = one group; two
members of a group in one process add up). Counted as things happen:

==================================================  =========================================================
``crmpilot_consumer_records_consumed_total``        records fetched and taken on {group, topic}
``crmpilot_consumer_records_processed_total``       records handled, outputs acknowledged {group, topic}
``crmpilot_consumer_records_produced_total``        outputs acknowledged by the broker {group, topic=output}
``crmpilot_consumer_handler_failures_total``        failed attempts {group, topic,
                                                    kind=poison|retryable|unhandled|fatal}
``crmpilot_consumer_retries_total``                 attempts scheduled again after a failure {group, topic}
``crmpilot_consumer_dead_lettered_total``           records moved to the dead-letter topic {group, topic}
``crmpilot_consumer_processing_seconds``            histogram, fetched → done (acknowledged or
                                                    dead-lettered) {group, topic}
``crmpilot_consumer_commit_seconds``                histogram, one synchronous offset commit {group, reason}
``crmpilot_consumer_commit_failures_total``         commits the broker refused {group, reason}
``crmpilot_consumer_pauses_total``                  times backpressure paused every partition {group}
``crmpilot_consumer_rebalances_total``              rebalance callbacks {group, kind=assign|revoke|lost}
``crmpilot_consumer_rebuilds_total``                Kafka consumers closed and subscribed anew after too
                                                    long out of the group {group}
==================================================  =========================================================

Read from the running services when scraped (:class:`LiveGauges`):

==================================================  =========================================================
``crmpilot_consumer_records_in_flight``             handler calls running now {group}
``crmpilot_consumer_records_buffered``              records fetched and not done (queued, running, backing off) {group}
``crmpilot_consumer_paused``                        1 while backpressure holds the partitions paused {group}
``crmpilot_consumer_assigned_partitions``           partitions assigned {group}
``crmpilot_consumer_lag``                           records behind the partition's end: high watermark of the
                                                    last fetch − the offset the next commit would store
                                                    {group, topic, partition}
``crmpilot_consumer_alive``                         1 while ``/healthz`` says alive (:mod:`.liveness`) {group}
``crmpilot_consumer_member``                        1 while a confirmed member of its consumer group {group}
``crmpilot_consumer_seconds_since_poll``            since the consumer thread last returned from a poll {group}
``crmpilot_consumer_seconds_without_membership``    since the member left its group (0 while a member) {group}
``crmpilot_consumer_seconds_since_assignment``      since the member last held a partition (0 while it holds
                                                    some) {group}
==================================================  =========================================================

The liveness gauges are shown while a service consumes (not before its
subscription's first run, nor while it stops); members of one group in one
process combine to the worst: the lowest ``alive`` and ``member``, the
highest ages.

The lag is noted with every periodic commit from librdkafka's cached
watermarks (no broker request); while backpressure pauses the partitions no
fetch refreshes the high watermark, so the lag shown then is a lower bound.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal, Protocol

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from crmpilot.telemetry import metrics as registry

from .liveness import Liveness

__all__ = ["ConsumerMetrics", "FailureKind", "Gauges", "LiveGauges", "live_gauges"]

FailureKind = Literal["poison", "retryable", "unhandled", "fatal"]

_P = "crmpilot_consumer_"


@dataclass(frozen=True, slots=True)
class Gauges:
    """A service's state at one instant (what :class:`LiveGauges` exposes)."""

    group: str
    in_flight: int
    buffered: int
    paused: bool
    assigned: int
    lag: Mapping[tuple[str, int], int]
    liveness: Liveness | None = None  # None: not consuming (starting or stopping)


class _Source(Protocol):
    def gauges(self) -> Gauges: ...


@dataclass(frozen=True, slots=True)
class _Families:
    consumed: Counter
    processed: Counter
    produced: Counter
    failures: Counter
    retries: Counter
    dead_lettered: Counter
    processing: Histogram
    commit: Histogram
    commit_failures: Counter
    pauses: Counter
    rebalances: Counter
    rebuilds: Counter


@cache
def _families() -> _Families:
    r = registry
    return _Families(
        consumed=r.counter(_P + "records_consumed", "Records fetched and taken on", ("group", "topic")),
        processed=r.counter(
            _P + "records_processed", "Records handled with their outputs acknowledged", ("group", "topic")
        ),
        produced=r.counter(_P + "records_produced", "Output records acknowledged by the broker", ("group", "topic")),
        failures=r.counter(
            _P + "handler_failures", "Failed handler attempts (decoding included)", ("group", "topic", "kind")
        ),
        retries=r.counter(_P + "retries", "Attempts scheduled again after a retryable failure", ("group", "topic")),
        dead_lettered=r.counter(_P + "dead_lettered", "Records moved to the dead-letter topic", ("group", "topic")),
        processing=r.histogram(
            _P + "processing_seconds", "From fetch to done (outputs acknowledged or dead-lettered)", ("group", "topic")
        ),
        commit=r.histogram(_P + "commit_seconds", "Duration of one synchronous offset commit", ("group", "reason")),
        commit_failures=r.counter(_P + "commit_failures", "Offset commits the broker refused", ("group", "reason")),
        pauses=r.counter(_P + "pauses", "Times backpressure paused the assigned partitions", ("group",)),
        rebalances=r.counter(_P + "rebalances", "Rebalance callbacks (assign, revoke, lost)", ("group", "kind")),
        rebuilds=r.counter(
            _P + "rebuilds", "Kafka consumers closed and subscribed anew after too long out of the group", ("group",)
        ),
    )


class ConsumerMetrics:
    """The counters and histograms of one consumer group (cheap to create; shared families)."""

    __slots__ = ("group", "_f")

    def __init__(self, group: str) -> None:
        self.group = group
        self._f = _families()

    def consumed(self, topic: str) -> None:
        self._f.consumed.labels(self.group, topic).inc()

    def processed(self, topic: str, seconds: float) -> None:
        self._f.processed.labels(self.group, topic).inc()
        self._f.processing.labels(self.group, topic).observe(seconds)

    def produced(self, topic: str) -> None:
        self._f.produced.labels(self.group, topic).inc()

    def failed(self, topic: str, kind: FailureKind) -> None:
        self._f.failures.labels(self.group, topic, kind).inc()

    def retried(self, topic: str) -> None:
        self._f.retries.labels(self.group, topic).inc()

    def dead_lettered(self, topic: str, seconds: float) -> None:
        self._f.dead_lettered.labels(self.group, topic).inc()
        self._f.processing.labels(self.group, topic).observe(seconds)

    def committed(self, reason: str, seconds: float, *, ok: bool) -> None:
        self._f.commit.labels(self.group, reason).observe(seconds)
        if not ok:
            self._f.commit_failures.labels(self.group, reason).inc()

    def paused(self) -> None:
        self._f.pauses.labels(self.group).inc()

    def rebalanced(self, kind: Literal["assign", "revoke", "lost"]) -> None:
        self._f.rebalances.labels(self.group, kind).inc()

    def rebuilt(self) -> None:
        self._f.rebuilds.labels(self.group).inc()


class LiveGauges(Collector):
    """Gauges read from the running services at scrape time (scrape on their event loop)."""

    def __init__(self) -> None:
        self._sources: weakref.WeakSet[_Source] = weakref.WeakSet()

    def add(self, source: _Source) -> None:
        self._sources.add(source)

    def discard(self, source: _Source) -> None:
        self._sources.discard(source)

    def collect(self) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily(_P + "records_in_flight", "Handler calls running now", labels=["group"])
        buffered = GaugeMetricFamily(_P + "records_buffered", "Records fetched and not done", labels=["group"])
        paused = GaugeMetricFamily(_P + "paused", "1 while backpressure holds the partitions paused", labels=["group"])
        assigned = GaugeMetricFamily(_P + "assigned_partitions", "Partitions assigned", labels=["group"])
        lag = GaugeMetricFamily(
            _P + "lag",
            "Records behind the partition's end (high watermark - offset to commit)",
            labels=["group", "topic", "partition"],
        )
        alive = GaugeMetricFamily(_P + "alive", "1 while /healthz says alive", labels=["group"])
        member = GaugeMetricFamily(_P + "member", "1 while a confirmed member of its consumer group", labels=["group"])
        since_poll = GaugeMetricFamily(
            _P + "seconds_since_poll", "Seconds since the consumer thread last returned from a poll", labels=["group"]
        )
        without = GaugeMetricFamily(
            _P + "seconds_without_membership",
            "Seconds since the member left its group (0 while a member)",
            labels=["group"],
        )
        since_assignment = GaugeMetricFamily(
            _P + "seconds_since_assignment",
            "Seconds since the member last held a partition (0 while it holds some)",
            labels=["group"],
        )
        groups: dict[str, list[int]] = {}
        lags: dict[tuple[str, str, int], int] = {}
        lives: dict[str, list[float]] = {}
        for source in list(self._sources):
            g = source.gauges()
            if g.liveness is not None:
                v = g.liveness
                worst = lives.setdefault(g.group, [1.0, 1.0, 0.0, 0.0, 0.0])  # alive, member, ages: the worst member
                worst[0] = min(worst[0], float(v.alive))
                worst[1] = min(worst[1], float(v.member))
                worst[2] = max(worst[2], v.since_poll_s or 0.0)
                worst[3] = max(worst[3], v.without_membership_s)
                worst[4] = max(worst[4], v.since_assignment_s)
            total = groups.setdefault(g.group, [0, 0, 0, 0])  # members of one group in one process add up
            total[0] += g.in_flight
            total[1] += g.buffered
            total[2] = max(total[2], int(g.paused))
            total[3] += g.assigned
            for (topic, partition), behind in g.lag.items():
                lags[(g.group, topic, partition)] = behind
        for group, (running, fetched, is_paused, partitions) in sorted(groups.items()):
            in_flight.add_metric([group], running)
            buffered.add_metric([group], fetched)
            paused.add_metric([group], is_paused)
            assigned.add_metric([group], partitions)
        for (group, topic, partition), behind in sorted(lags.items()):
            lag.add_metric([group, topic, str(partition)], behind)
        for group, (is_alive, is_member, poll_age, out_s, unassigned_s) in sorted(lives.items()):
            alive.add_metric([group], is_alive)
            member.add_metric([group], is_member)
            since_poll.add_metric([group], poll_age)
            without.add_metric([group], out_s)
            since_assignment.add_metric([group], unassigned_s)
        yield from (in_flight, buffered, paused, assigned, lag, alive, member, since_poll, without, since_assignment)


@cache
def live_gauges() -> LiveGauges:
    """The process's one :class:`LiveGauges`, registered on first use."""
    collector = LiveGauges()
    registry.register_collector(collector)
    return collector
