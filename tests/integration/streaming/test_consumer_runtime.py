"""The consumer runtime against a real broker: outputs, commits, poison, order, retries, fatal."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from streamkit import case_event, committed_and_end, produce_envelopes, produce_raw, read_topic, run_until

from crmpilot.errors import Fatal, Retryable
from crmpilot.events import Envelope, encode
from crmpilot.llm.errors import LLMContextOverflow
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService, MessageContext, MissingTopics, Output, RuntimeSettings
from tests.kafkakit import headers_of, key_of, value_of

pytestmark = pytest.mark.integration

FAST = {"commit_interval_s": 0.2, "backoff_initial_s": 0.01, "backoff_max_s": 0.05}
TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _settings(group: str, topic: str, **kw: Any) -> RuntimeSettings:
    return RuntimeSettings(group_id=group, topics=(topic,), **{**FAST, **kw})


def _echo(out_topic: str) -> Callable[[Envelope[Any], MessageContext], Any]:
    async def handle(envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        return [Output(out_topic, ctx.key, encode(envelope))]

    return handle


def test_echo_outputs_arrive_and_offsets_are_committed_to_the_end(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    src = unique_topic("echo-in", partitions=3, with_dlq=True)
    out = unique_topic("echo-out", partitions=3)
    group = unique_name("group")
    n = 300
    produce_envelopes(kafka_settings.bootstrap, src, (case_event(i, f"case-{i % 30}") for i in range(n)))
    produce_raw(
        kafka_settings.bootstrap, src, [(b"case-x", encode(case_event(n, "case-x")), [("traceparent", TRACEPARENT)])]
    )
    service = ConsumerService(_echo(out), _settings(group, src), kafka_settings)

    asyncio.run(run_until(service, lambda: service.stats.processed == n + 1))

    outputs = read_topic(kafka_settings.bootstrap, out, expect=n + 1)
    ids = sorted(json.loads(value_of(m))["id"] for m in outputs)
    assert ids == sorted(f"evt-{i}" for i in range(n + 1))
    traced = [m for m in outputs if m.key() == b"case-x"]
    assert headers_of(traced[0])["traceparent"] == TRACEPARENT  # trace context passed through
    offsets = committed_and_end(kafka_settings.bootstrap, src, group)
    assert {p: c for p, (c, _) in offsets.items()} == {p: end for p, (_, end) in offsets.items()}
    assert sum(end for _, end in offsets.values()) == n + 1
    assert service.stats.dead_lettered == 0


def test_poison_records_are_dead_lettered_with_error_headers_and_consumption_goes_on(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    src = unique_topic("poison-in", with_dlq=True)
    out = unique_topic("poison-out")
    group = unique_name("group")
    good = encode(case_event(0, "c1"))
    unknown_version = json.loads(good)
    unknown_version["schemaversion"] = 99
    oversize = encode(
        case_event(1, "c1").model_copy(
            update={"data": case_event(1, "c1").data.model_copy(update={"description": "x" * 5000})}
        )
    )
    records = [
        (b"c1", good, []),
        (b"c2", b"{not json", [("traceparent", TRACEPARENT)]),
        (b"c3", json.dumps(unknown_version).encode(), []),
        (b"c4", b"\xff\xfe\x00 broken utf-8", []),
        (b"c5", oversize, []),
        (b"c6", encode(case_event(2, "c6")), []),
    ]
    produce_raw(kafka_settings.bootstrap, src, records)
    service = ConsumerService(_echo(out), _settings(group, src, max_record_bytes=4096), kafka_settings)

    asyncio.run(run_until(service, lambda: service.stats.processed + service.stats.dead_lettered == len(records)))

    dead = read_topic(kafka_settings.bootstrap, src + ".dlq", expect=4)
    by_key = {m.key(): m for m in dead}
    assert set(by_key) == {b"c2", b"c3", b"c4", b"c5"}
    codes = {k: headers_of(m)["crmpilot.error.code"] for k, m in by_key.items()}
    assert codes == {
        b"c2": b"invalid_json",
        b"c3": b"unknown_schema_version",
        b"c4": b"invalid_encoding",
        b"c5": b"oversize_payload",
    }
    for offset, (key, value, _) in enumerate(records):
        if key in by_key:
            m = by_key[key]
            h = headers_of(m)
            assert m.value() == value  # original value kept byte for byte
            assert h["crmpilot.source.topic"] == src.encode()
            assert h["crmpilot.source.partition"] == b"0"
            assert h["crmpilot.source.offset"] == str(offset).encode()
            assert h["crmpilot.consumer.group"] == group.encode()
            assert h["crmpilot.attempts"] == b"0"
            assert h["crmpilot.error.class"].startswith(b"crmpilot.events.errors.")
            assert h["crmpilot.error.message"] and h["crmpilot.error.stack"] and h["crmpilot.failed_at"]
    assert headers_of(by_key[b"c2"])["traceparent"] == TRACEPARENT  # original headers kept
    assert sorted(key_of(m) for m in read_topic(kafka_settings.bootstrap, out, expect=2)) == [b"c1", b"c6"]
    ((committed, end),) = committed_and_end(kafka_settings.bootstrap, src, group).values()
    assert committed == end == len(records)


def test_per_key_order_holds_while_keys_run_concurrently(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    src = unique_topic("order-in", with_dlq=True)
    out = unique_topic("order-out")
    keys, per_key = 20, 15
    events = [case_event(i, f"k{i % keys}") for i in range(keys * per_key)]
    produce_envelopes(kafka_settings.bootstrap, src, events)
    handled: dict[str, list[int]] = defaultdict(list)
    running = peak = 0

    async def handle(envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(random.uniform(0, 0.01))
        handled[envelope.subject].append(int(envelope.data.description))
        running -= 1
        return [Output(out, ctx.key, encode(envelope))]

    service = ConsumerService(handle, _settings(unique_name("group"), src, max_in_flight=16), kafka_settings)
    asyncio.run(run_until(service, lambda: service.stats.processed == len(events)))

    expected = {f"k{k}": [i for i in range(keys * per_key) if i % keys == k] for k in range(keys)}
    assert dict(handled) == expected
    outputs = read_topic(kafka_settings.bootstrap, out, expect=len(events))
    produced: dict[str, list[int]] = defaultdict(list)
    for m in sorted(outputs, key=lambda m: (m.partition(), m.offset())):
        body = json.loads(value_of(m))
        produced[body["subject"]].append(int(body["data"]["description"]))
    assert dict(produced) == expected  # and the outputs are in the same per-key order
    assert 1 < peak <= 16


def test_retryable_errors_are_retried_then_dead_lettered_and_final_ones_at_once(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    src = unique_topic("retry-in", with_dlq=True)
    out = unique_topic("retry-out")
    produce_envelopes(
        kafka_settings.bootstrap,
        src,
        [
            case_event(0, "flaky"),
            case_event(1, "slow-api"),
            case_event(2, "always-down"),
            case_event(3, "buggy"),
            case_event(4, "too-long"),
        ],
    )
    attempts: dict[str, list[tuple[int, float]]] = defaultdict(list)

    async def handle(envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        subject = envelope.subject
        attempts[subject].append((ctx.attempt, time.monotonic()))
        if subject == "flaky" and ctx.attempt < 3:
            raise Retryable("upstream 503")
        if subject == "slow-api" and ctx.attempt == 1:
            raise Retryable("429", retry_after=0.4)
        if subject == "always-down":
            raise Retryable("still down")
        if subject == "buggy":
            raise ZeroDivisionError("division by zero")
        if subject == "too-long":  # the endpoint says this request can never succeed: final for this record
            raise LLMContextOverflow("request (8958 tokens) exceeds the available context size (4096 tokens)")
        return [Output(out, ctx.key, encode(envelope))]

    service = ConsumerService(handle, _settings(unique_name("group"), src, max_attempts=4), kafka_settings)
    asyncio.run(run_until(service, lambda: service.stats.processed + service.stats.dead_lettered == 5))

    assert [a for a, _ in attempts["flaky"]] == [1, 2, 3]
    (_, t1), (_, t2) = attempts["slow-api"]
    assert t2 - t1 >= 0.39  # retry_after honoured
    assert len(attempts["always-down"]) == len(attempts["buggy"]) == 4
    assert sorted(key_of(m) for m in read_topic(kafka_settings.bootstrap, out, expect=2)) == [b"flaky", b"slow-api"]
    assert len(attempts["too-long"]) == 1
    dead = {m.key(): headers_of(m) for m in read_topic(kafka_settings.bootstrap, src + ".dlq", expect=3)}
    assert set(dead) == {b"always-down", b"buggy", b"too-long"}
    assert dead[b"too-long"]["crmpilot.error.code"] == b"llm_context_overflow"
    assert dead[b"too-long"]["crmpilot.attempts"] == b"1"
    assert dead[b"always-down"]["crmpilot.error.code"] == b"retries_exhausted"
    assert dead[b"always-down"]["crmpilot.error.class"] == b"crmpilot.errors.Retryable"
    assert dead[b"always-down"]["crmpilot.attempts"] == b"4"
    assert dead[b"buggy"]["crmpilot.error.code"] == b"unhandled_exception"
    assert dead[b"buggy"]["crmpilot.error.class"] == b"builtins.ZeroDivisionError"
    assert b"ZeroDivisionError" in dead[b"buggy"]["crmpilot.error.stack"]


def test_a_fatal_error_stops_the_service_and_commits_only_before_it(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    src = unique_topic("fatal-in", with_dlq=True)
    group = unique_name("group")
    produce_envelopes(kafka_settings.bootstrap, src, [case_event(i, "same-key") for i in range(10)])

    class CredentialsRevoked(Fatal):
        pass

    async def handle(envelope: Envelope[Any], ctx: MessageContext) -> None:
        if ctx.offset == 5:
            raise CredentialsRevoked("CRM says 401")

    service = ConsumerService(handle, _settings(group, src), kafka_settings)
    with pytest.raises(CredentialsRevoked):
        asyncio.run(asyncio.wait_for(service.run(), 30))
    assert service.stats.processed == 5
    ((committed, end),) = committed_and_end(kafka_settings.bootstrap, src, group).values()
    assert (committed, end) == (5, 10)  # the failed record and everything after it will be redelivered


def test_unordered_sink_with_many_in_flight(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    src = unique_topic("sink-in", partitions=2, with_dlq=True)
    group = unique_name("group")
    n = 600
    produce_envelopes(kafka_settings.bootstrap, src, (case_event(i, f"k{i}") for i in range(n)))
    running = peak = 0

    async def sink(envelope: Envelope[Any], ctx: MessageContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1

    settings = _settings(group, src, ordering="unordered", max_in_flight=300, max_buffered=400)
    service = ConsumerService(sink, settings, kafka_settings)
    asyncio.run(run_until(service, lambda: service.stats.processed == n))
    assert peak > 100
    assert service.stats.pauses >= 1  # 600 records > 400 buffered: backpressure kicked in
    offsets = committed_and_end(kafka_settings.bootstrap, src, group)
    assert all(c == end for c, end in offsets.values())


def test_a_missing_dead_letter_topic_stops_the_service_at_start(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    src = unique_topic("no-dlq")  # no .dlq twin

    async def sink(envelope: Envelope[Any], ctx: MessageContext) -> None:
        raise AssertionError("never called")

    service = ConsumerService(sink, _settings(unique_name("group"), src), kafka_settings)
    with pytest.raises(MissingTopics) as caught:
        asyncio.run(asyncio.wait_for(service.run(), 20))
    assert caught.value.topics == [src + ".dlq"]
    assert "crmpilot topics apply" in str(caught.value)
    assert asyncio.run(ConsumerService(sink, _settings(unique_name("group"), src), kafka_settings).serve()) == 1


def test_sigterm_drains_in_flight_records_commits_and_exits_0(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    src = unique_topic("sigterm-in", with_dlq=True)
    group = unique_name("group")
    produce_envelopes(kafka_settings.bootstrap, src, (case_event(i, f"k{i}") for i in range(20)))
    started: list[int] = []
    finished: list[int] = []

    async def slow_sink(envelope: Envelope[Any], ctx: MessageContext) -> None:
        started.append(ctx.offset)
        if len(started) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.3)
        finished.append(ctx.offset)

    settings = _settings(group, src, ordering="unordered", max_in_flight=5)
    assert asyncio.run(asyncio.wait_for(ConsumerService(slow_sink, settings, kafka_settings).serve(), 30)) == 0
    assert sorted(finished) == sorted(started) == [0, 1, 2, 3, 4]  # in flight finished; queued ones never started
    ((committed, end),) = committed_and_end(kafka_settings.bootstrap, src, group).values()
    assert (committed, end) == (5, 20)
