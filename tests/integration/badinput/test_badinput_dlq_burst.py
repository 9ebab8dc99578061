"""A burst of bad records on the real broker: each lands on the DLQ with its reason; the consumer neither crashes nor
stalls.

Runs a :class:`ConsumerService` on a fresh topic of the local stack's broker
with a burst of every kind of bad record (random bytes, invalid UTF-8, not
JSON, JSON that is not an object, deep nesting, oversize, unknown type and
version, wrong types, missing fields, naive and future times) interleaved
with valid events over three partitions. Then: every bad record is on
``<topic>.dlq`` exactly once, with the error class, code, message and source
position in its headers; every valid event was handled; the committed offset
of every partition reached its end; the service was still running.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    Message,
    Producer,
    TopicPartition,
)

from crmpilot.events import CaseEvent, Envelope, encode
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService, MessageContext, Output, RuntimeSettings
from tests.kafkakit import header_list, key_of

pytestmark = pytest.mark.integration

N_VALID = 150


def _valid(n: int) -> Envelope[CaseEvent]:
    return Envelope[CaseEvent](
        id=f"evt-{n}", source="tests", type="crm.case.created", schemaversion=1, subject=f"case-{n % 17}",
        data=CaseEvent(case_id=f"case-{n % 17}", subject="Card declined", description=f"attempt {n}"),
    )  # fmt: skip


def _obj(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(encode(_valid(0)))
    obj.update(changes)
    return obj


def _bad_records(rnd: random.Random) -> list[tuple[str, bytes, str]]:
    """(name, value, expected error code) of every kind of bad record."""
    deep = ('{"a":' * 30_000 + "1" + "}" * 30_000).encode()  # under the size limit
    missing = _obj()
    del missing["data"]["case_id"]
    wrong = _obj()
    wrong["data"]["is_vip"] = {"yes": True}
    future = _obj(time=(datetime.now(UTC) + timedelta(days=400)).isoformat())
    naive = _obj(time="2026-11-02T09:30:00")
    kinds: list[tuple[str, bytes, str]] = [
        (
            "random-bytes",
            bytes(rnd.randrange(256) for _ in range(200)) + b"\xff",
            "invalid_encoding",
        ),
        (
            "invalid-utf8",
            encode(_valid(1)).replace(b"Card", b"C\xc3\x28rd"),
            "invalid_encoding",
        ),
        ("not-json", b"{this is not json", "invalid_json"),
        ("not-an-object", b"[1, 2, 3]", "invalid_json"),
        ("deep-nesting", deep, "invalid_json"),
        ("oversize", json.dumps(_obj(pad="x" * 300_000)).encode(), "oversize_payload"),
        (
            "unknown-type",
            json.dumps(_obj(type="crm.case.exploded")).encode(),
            "unknown_event_type",
        ),
        (
            "unknown-version",
            json.dumps(_obj(schemaversion=42)).encode(),
            "unknown_schema_version",
        ),
        ("wrong-type", json.dumps(wrong).encode(), "invalid_payload"),
        ("missing-field", json.dumps(missing).encode(), "invalid_payload"),
        ("future-time", json.dumps(future).encode(), "future_timestamp"),
        ("naive-time", json.dumps(naive).encode(), "invalid_payload"),
        ("empty", b"", "invalid_json"),
    ]
    return kinds


def _produce(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes, int]]) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.max.bytes": 2_000_000,
        }
    )
    errors: list[Any] = []
    for key, value, partition in records:
        producer.produce(
            topic,
            value,
            key,
            partition=partition,
            on_delivery=lambda err, _m: errors.append(err) if err else None,
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not errors, errors


def _read_all(bootstrap: str, topic: str, expect: int, timeout: float = 30) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "unused",
            "enable.auto.commit": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(out) < expect and time.monotonic() < deadline:
            out.extend(m for m in consumer.consume(500, 0.2) if m.error() is None)
        out.extend(m for m in consumer.consume(500, 0.5) if m.error() is None)  # and any extra copy
        return out
    finally:
        consumer.close()


def _committed_and_end(bootstrap: str, topic: str, group: str) -> dict[int, tuple[int, int]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        return {
            tp.partition: (
                tp.offset,
                consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)[1],
            )
            for tp in consumer.committed(tps, timeout=10)
        }
    finally:
        consumer.close()


async def _run_until(service: ConsumerService, done: Callable[[], bool], timeout: float = 60) -> bool:
    """Run until ``done()``; return whether the service was still running then."""
    task = asyncio.create_task(service.run())
    deadline = time.monotonic() + timeout
    try:
        while not done():
            if task.done():
                await task
                raise AssertionError("the service stopped on its own")
            assert time.monotonic() < deadline, f"not done within {timeout}s; stats {service.stats}"
            await asyncio.sleep(0.05)
        return not task.done()
    finally:
        service.stop()
        await asyncio.wait_for(task, 60)


def test_a_burst_of_bad_records_is_dead_lettered_with_reasons_and_the_consumer_keeps_going(
    kafka_settings: KafkaSettings,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
) -> None:
    bootstrap = kafka_settings.bootstrap
    topic = unique_topic("badinput", partitions=3, with_dlq=True)
    group = unique_name("badinput")
    rnd = random.Random(7)
    kinds = _bad_records(rnd)
    records: list[tuple[bytes, bytes, int]] = []
    expected_code: dict[bytes, str] = {}
    for copy in range(3):  # each kind three times, on every partition
        for name, value, code in kinds:
            key = f"bad-{name}-{copy}".encode()
            records.append((key, value, copy % 3))
            expected_code[key] = code
    records += [(f"case-{n % 17}".encode(), encode(_valid(n)), n % 3) for n in range(N_VALID)]
    rnd.shuffle(records)
    _produce(bootstrap, topic, records)

    handled: Counter[str] = Counter()

    async def handler(envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        handled[envelope.id] += 1
        return ()

    settings = RuntimeSettings(group_id=group, topics=(topic,), commit_interval_s=0.2, max_attempts=1)
    service = ConsumerService(handler, settings, kafka_settings)

    def done() -> bool:
        ends = _committed_and_end(bootstrap, topic, group)
        return (
            service.stats.dead_lettered >= len(expected_code)
            and len(handled) >= N_VALID
            and all(c == e for c, e in ends.values())
        )

    still_running = asyncio.run(_run_until(service, done))
    assert still_running, "the consumer must not crash on bad input"

    assert set(handled) == {f"evt-{n}" for n in range(N_VALID)}
    assert service.stats.dead_lettered == len(expected_code)
    assert all(c == e for c, e in _committed_and_end(bootstrap, topic, group).values()), (
        "the committed offset must reach the end"
    )

    dlq = _read_all(bootstrap, topic + ".dlq", len(expected_code))
    by_key = Counter(m.key() for m in dlq)
    assert by_key == Counter(set(expected_code)), "exactly the bad records, once each"
    for msg in dlq:
        headers = {k: (v or b"").decode() for k, v in header_list(msg)}
        key = key_of(msg)
        assert headers["crmpilot.error.code"] == expected_code[key], (
            key,
            headers["crmpilot.error.message"],
        )
        assert headers["crmpilot.error.class"].startswith("crmpilot.events.errors.")
        assert headers["crmpilot.error.message"], key
        assert headers["crmpilot.source.topic"] == topic
        assert int(headers["crmpilot.source.offset"]) >= 0
        assert headers["crmpilot.attempts"] == "0"  # poison is never handed to the handler
        assert headers["crmpilot.consumer.group"] == group
        original = next(v for k, v, _ in records if k == key)
        assert msg.value() == original, "the DLQ keeps the original bytes for replay"
