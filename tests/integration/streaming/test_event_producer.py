"""`produce_events` / `EventProducer`: envelopes keyed by subject, traceparent passed through."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from streamkit import case_event, read_topic

from crmpilot.events import decode
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import EventProducer, produce_events
from tests.kafkakit import headers_of

pytestmark = pytest.mark.integration

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_produce_events_blocking_and_async(kafka_settings: KafkaSettings, unique_topic: Callable[..., str]) -> None:
    topic = unique_topic("events", partitions=3)
    deliveries = produce_events(
        topic, [case_event(i, f"case-{i}") for i in range(5)], kafka=kafka_settings, traceparent=TRACEPARENT
    )
    assert len(deliveries) == 5 and all(d.topic == topic and d.offset >= 0 for d in deliveries)

    async def send() -> None:
        async with EventProducer(kafka_settings, client_id="test") as events:
            await events.send(topic, case_event(5, "case-5"), traceparent=TRACEPARENT, tracestate="vendor=1")
            await events.send_many(topic, [case_event(6, "case-6"), case_event(7, "case-7")])

    asyncio.run(send())
    records = read_topic(kafka_settings.bootstrap, topic, expect=8)
    assert len(records) == 8
    for m in records:
        envelope = decode(m.value())
        assert m.key() == envelope.subject.encode()
        headers = headers_of(m)
        assert headers["content-type"].startswith(b"application/cloudevents+json")
        if envelope.id in {"evt-6", "evt-7"}:
            assert "traceparent" not in headers
        else:
            assert headers["traceparent"] == TRACEPARENT.encode()
    assert headers_of(next(m for m in records if m.key() == b"case-5"))["tracestate"] == b"vendor=1"
    # same subject -> same partition (per-entity order downstream)
    again = produce_events(topic, [case_event(9, "case-1")], kafka=kafka_settings)
    assert again[0].partition == next(m.partition() for m in records if m.key() == b"case-1")
