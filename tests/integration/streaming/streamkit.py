"""Helpers of the streaming integration tests: make envelopes, produce raw records, read topics, run a
service, ask its lifecycle endpoints."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from crmpilot.events import CaseEvent, Envelope, encode
from crmpilot.streaming import ConsumerService


def case_event(n: int, subject: str, *, event_id: str | None = None) -> Envelope[CaseEvent]:
    """A valid ``crm.case.created`` envelope; ``description`` carries the sequence number."""
    return Envelope[CaseEvent](
        id=event_id or f"evt-{n}",
        source="tests",
        type="crm.case.created",
        schemaversion=1,
        subject=subject,
        data=CaseEvent(case_id=subject, description=str(n)),
    )


def produce_raw(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes]]]]
) -> int:
    """Produce (key, value, headers) records as they are, wait for all acks."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    errors: list[Any] = []
    n = 0
    for key, value, headers in records:
        producer.produce(
            topic, value, key, headers=list(headers), on_delivery=lambda err, _m: errors.append(err) if err else None
        )
        producer.poll(0)
        n += 1
    assert producer.flush(30) == 0
    assert not errors, errors
    return n


def produce_envelopes(bootstrap: str, topic: str, envelopes: Iterable[Envelope[Any]]) -> int:
    return produce_raw(bootstrap, topic, ((e.subject.encode(), encode(e), ()) for e in envelopes))


def read_topic(bootstrap: str, topic: str, *, expect: int, timeout: float = 20.0) -> list[Message]:
    """All records of ``topic`` from the beginning, once ``expect`` arrived (or the timeout passed)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(out) < expect and time.monotonic() < deadline:
            for m in consumer.consume(500, 0.2):
                assert m.error() is None, m.error()
                out.append(m)
        # anything beyond `expect` that is already there (duplicates) is read too
        out.extend(m for m in consumer.consume(500, 0.5) if m.error() is None)
        return out
    finally:
        consumer.close()


def committed_and_end(bootstrap: str, topic: str, group: str) -> dict[int, tuple[int, int]]:
    """Per partition: (offset committed by ``group``, end offset)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        tps = [TopicPartition(topic, p) for p in meta.partitions]
        committed = consumer.committed(tps, timeout=10)
        return {
            tp.partition: (
                tp.offset,
                consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)[1],
            )
            for tp in committed
        }
    finally:
        consumer.close()


async def run_until(service: ConsumerService, done: Callable[[], bool], *, timeout: float = 30.0) -> None:
    """Run ``service`` until ``done()`` holds, then stop it gracefully; fail on timeout or crash."""
    task = asyncio.create_task(service.run())
    deadline = time.monotonic() + timeout
    try:
        while not done():
            if task.done():
                await task
                raise AssertionError("service stopped before the condition held")
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s; stats {service.stats}")
            await asyncio.sleep(0.05)
    finally:
        service.stop()
        await asyncio.wait_for(task, 60)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """Blocking GET: (status, body), error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def aget(url: str) -> tuple[int, bytes]:
    """:func:`http_get` off the event loop (the server under test runs on it)."""
    return await asyncio.to_thread(http_get, url)


def samples(metrics_text: bytes, name: str, **labels: str) -> list[float]:
    """Values of the samples called ``name`` whose labels include ``labels``."""
    return [
        s.value
        for family in text_string_to_metric_families(metrics_text.decode())
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    ]


def metric(metrics_text: bytes, name: str, **labels: str) -> float:
    """The sum of the matching samples (0 when none)."""
    return sum(samples(metrics_text, name, **labels))
