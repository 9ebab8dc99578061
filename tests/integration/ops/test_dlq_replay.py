"""``crmpilot dlq replay`` against the real broker and the real consumer runtime.

Records that failed because of a bug later "fixed upstream" (the handler rejects
some keys until a flag flips) are replayed and processed exactly once; a record
that is still bad goes back to the dead-letter topic carrying its replay count,
and once the limit is reached a further replay refuses it: no loop.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import typer
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition
from typer.testing import CliRunner

from crmpilot.events import CaseEvent, Envelope, PoisonMessage, encode
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService, MessageContext, Output, RuntimeSettings
from tests.kafkakit import header_list

pytestmark = pytest.mark.integration


class NotYetSupported(PoisonMessage):
    code = "not_yet_supported"


class Handler:
    """Accepts every case except those whose key is in ``broken``; counts successes per key."""

    def __init__(self, broken: set[str]) -> None:
        self.broken = broken
        self.done: Counter[str] = Counter()

    async def __call__(self, envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        if envelope.subject in self.broken:
            raise NotYetSupported(f"cases like {envelope.subject} are not supported yet")
        self.done[envelope.subject] += 1
        return ()


def run(
    handler: Handler, kafka: KafkaSettings, group: str, topic: str, done: Callable[[ConsumerService], bool]
) -> ConsumerService:
    settings = RuntimeSettings(group_id=group, topics=(topic,), commit_interval_s=0.2)
    service = ConsumerService(handler, settings, kafka)

    async def main() -> None:
        task = asyncio.create_task(service.run())
        deadline = time.monotonic() + 60
        try:
            while not done(service):
                assert not task.done(), "service stopped"
                assert time.monotonic() < deadline, f"timed out: {service.stats}"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # anything beyond what we waited for would show up now
        finally:
            service.stop()
            await asyncio.wait_for(task, 60)

    asyncio.run(main())
    return service


def read_all(bootstrap: str, topic: str) -> list[Message]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        out: list[Message] = []
        deadline = time.monotonic() + 20
        while len(out) < sum(ends.values()) and time.monotonic() < deadline:
            out += [m for m in consumer.consume(100, 0.2) if m.error() is None]
        return out
    finally:
        consumer.close()


def headers(msg: Message) -> dict[str, str]:
    return {k: v.decode() for k, v in header_list(msg) if v is not None}


def case(key: str) -> bytes:
    return encode(
        Envelope[CaseEvent](
            source="tests", type="crm.case.created", schemaversion=1, subject=key, data=CaseEvent(case_id=key)
        )
    )


def test_fixed_records_are_replayed_once_and_a_still_bad_one_stops_at_the_limit(
    ops_app: typer.Typer,
    kafka_settings: KafkaSettings,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRMPILOT_KAFKA_BOOTSTRAP", kafka_settings.bootstrap)
    bootstrap = kafka_settings.bootstrap
    topic = unique_topic("cases", partitions=3, with_dlq=True)
    dlq = topic + ".dlq"
    group, replay_group = unique_name("svc"), unique_name("replay")
    cli = CliRunner()

    def replay(*args: str) -> dict[str, Any]:
        result = cli.invoke(
            ops_app, ["dlq", "replay", dlq, "--group", replay_group, "--max-replays", "2", "--json", *args]
        )
        assert result.exit_code == 0, result.output
        summary: dict[str, Any] = json.loads(result.output)
        return summary

    producer = Producer({"bootstrap.servers": bootstrap})
    keys = ["ok-1", "ok-2", "ok-3", "fixed-1", "fixed-2", "still-bad"]
    trace = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    for key in keys:
        producer.produce(topic, case(key), key.encode(), headers=[("traceparent", trace), ("x-origin", b"crm")])
    assert producer.flush(30) == 0

    handler = Handler({"fixed-1", "fixed-2", "still-bad"})
    run(handler, kafka_settings, group, topic, lambda s: s.stats.processed + s.stats.dead_lettered >= 6)
    assert set(handler.done) == {"ok-1", "ok-2", "ok-3"}
    assert len(read_all(bootstrap, dlq)) == 3

    # a dry run sends and remembers nothing
    source_before = len(read_all(bootstrap, topic))
    dry = replay("--all", "--dry-run")
    assert dry["dry_run"] and dry["counts"] == {"replay": 3}
    assert len(read_all(bootstrap, topic)) == source_before

    # the bug is fixed upstream for two of them; replay everything
    handler.broken = {"still-bad"}
    first = replay("--all")
    assert first["counts"] == {"replayed": 3}
    replayed = [m for m in read_all(bootstrap, topic) if "crmpilot.replay.count" in headers(m)]
    assert len(replayed) == 3
    for m in replayed:
        h = headers(m)
        assert h["crmpilot.replay.count"] == "1" and h["x-origin"] == "crm"
        assert h["traceparent"].split("-")[1] == trace.decode().split("-")[1]  # same trace, a new send span
        assert not any(k.startswith("crmpilot.error.") for k in h)
    # remembered: running it again sends nothing
    assert replay("--all")["counts"] == {}
    assert len(read_all(bootstrap, topic)) == source_before + 3

    before = handler.done.copy()
    run(handler, kafka_settings, group, topic, lambda s: s.stats.processed + s.stats.dead_lettered >= 3)
    assert handler.done - before == Counter({"fixed-1": 1, "fixed-2": 1})  # processed once, nothing else again
    back = [m for m in read_all(bootstrap, dlq) if m.key() == b"still-bad"]
    assert [headers(m).get("crmpilot.replay.count") for m in back] == [None, "1"]  # the runtime kept the count
    assert headers(back[1])["crmpilot.error.code"] == "not_yet_supported"

    # replay the returned record by its position: it fails again, now with count 2
    position = f"{back[1].partition()}:{back[1].offset()}"
    assert replay("--offset", position)["counts"] == {"replayed": 1}
    assert replay("--offset", position)["counts"] == {"already_replayed": 1}
    run(handler, kafka_settings, group, topic, lambda s: s.stats.dead_lettered >= 1)
    third = [m for m in read_all(bootstrap, dlq) if m.key() == b"still-bad"][-1]
    assert headers(third)["crmpilot.replay.count"] == "2"

    # at the limit: refused, reported, not sent; and again on the next run
    source_now = len(read_all(bootstrap, topic))
    for _ in range(2):
        refused = replay("--all")
        assert refused["counts"] == {"refused": 1}
        (decision,) = refused["decisions"]
        assert decision["offset"] == third.offset() and decision["replay_count"] == 2
    assert len(read_all(bootstrap, topic)) == source_now
    assert set(handler.done) == {"ok-1", "ok-2", "ok-3", "fixed-1", "fixed-2"} and max(handler.done.values()) == 1

    # the replay group's lag is what is left to look at: the refused record
    lag = cli.invoke(ops_app, ["lag", "--group", replay_group, "--json"])
    assert lag.exit_code == 0, lag.output
    assert json.loads(lag.output)[0]["total_lag"] == 1
