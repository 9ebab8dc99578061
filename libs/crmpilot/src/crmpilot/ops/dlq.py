"""Reading dead-letter topics: the records, their ``crmpilot.error.*`` context, counts by error class.

A dead letter is the original record (key, value, headers) plus the headers
written by :mod:`crmpilot.streaming.dlq` and, once replayed and failed again,
``crmpilot.replay.count``. Records are read by assignment with a throwaway
consumer group that never commits, from a start offset up to the end offset
seen when reading began.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaException, TopicPartition

from crmpilot.streaming.context import Header

from .broker import unavailable

__all__ = [
    "REPLAY_COUNT",
    "DeadLetter",
    "ErrorCount",
    "read_dead_letters",
    "count_by_error",
    "preview",
]

REPLAY_COUNT = "crmpilot.replay.count"
"""Header: how many times ``crmpilot dlq replay`` sent this record back to its source topic."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a dead-letter topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]
    timestamp: datetime | None

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` as text, None if absent."""
        for k, v in reversed(self.headers):
            if k == name:
                return None if v is None else v.decode("utf-8", "replace")
        return None

    @property
    def error_class(self) -> str:
        return self.header("crmpilot.error.class") or "unknown"

    @property
    def error_code(self) -> str:
        return self.header("crmpilot.error.code") or "unknown"

    @property
    def source_topic(self) -> str | None:
        return self.header("crmpilot.source.topic")

    @property
    def replay_count(self) -> int:
        raw = self.header(REPLAY_COUNT)
        return int(raw) if raw is not None and raw.isdigit() else 0

    @property
    def position(self) -> str:
        """``partition:offset``, the form ``dlq replay --offset`` takes."""
        return f"{self.partition}:{self.offset}"

    def crmpilot_headers(self) -> dict[str, str]:
        """The ``crmpilot.*`` headers (error, source, attempts, group, replay count)."""
        return {k: v.decode("utf-8", "replace") for k, v in self.headers if k.startswith("crmpilot.") and v is not None}


@dataclass(frozen=True, slots=True)
class ErrorCount:
    topic: str
    error_class: str
    error_code: str
    count: int


def preview(value: bytes | None, limit: int = 200) -> str:
    """The payload as text for a human, cut to ``limit`` characters (``<null>`` for a tombstone)."""
    if value is None:
        return "<null>"
    text = value.decode("utf-8", "backslashreplace")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_dead_letters(
    consumer: Consumer, topic: str, ranges: Mapping[int, tuple[int, int]], *, timeout: float
) -> Iterator[DeadLetter]:
    """The records of ``topic`` in ``[start, end)`` per partition, in offset order per partition.

    Raises :class:`~crmpilot.ops.errors.BrokerUnavailable` if they do not all arrive within ``timeout``.
    """
    wanted = {p: (s, e) for p, (s, e) in ranges.items() if e > s}
    if not wanted:
        return
    consumer.assign([TopicPartition(topic, p, s) for p, (s, _) in wanted.items()])
    deadline = time.monotonic() + timeout
    try:
        while wanted:
            if time.monotonic() > deadline:
                left = ", ".join(f"{p}@{s}..{e}" for p, (s, e) in sorted(wanted.items()))
                raise unavailable(f"reading {topic}", KafkaException(f"timed out with records left: {left}"))
            batch = consumer.consume(500, 0.5)
            if not batch:  # gaps (transaction markers, compaction): the position tells we are past the end
                for tp in consumer.position([TopicPartition(topic, p) for p in wanted]):
                    if tp.offset >= wanted[tp.partition][1]:
                        del wanted[tp.partition]
            for msg in batch:
                if msg.error() is not None:
                    continue
                partition, offset = msg.partition(), msg.offset()
                if partition not in wanted or offset is None:
                    continue
                start, end = wanted[partition]
                if offset >= end:
                    del wanted[partition]
                    continue
                if offset + 1 >= end:
                    del wanted[partition]
                if offset >= start:
                    ts_type, ts_ms = msg.timestamp()
                    yield DeadLetter(
                        topic,
                        partition,
                        offset,
                        msg.key(),
                        msg.value(),
                        tuple(cast(list[Header], msg.headers() or [])),
                        None if ts_type == TIMESTAMP_NOT_AVAILABLE else datetime.fromtimestamp(ts_ms / 1000, UTC),
                    )
    finally:
        consumer.unassign()


def count_by_error(records: Iterable[DeadLetter]) -> list[ErrorCount]:
    """How many dead letters per topic, error class and code; most frequent first."""
    counts = Counter((r.topic, r.error_class, r.error_code) for r in records)
    return [
        ErrorCount(t, c, code, n)
        for (t, c, code), n in sorted(counts.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0]))
    ]
