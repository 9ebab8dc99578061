"""Rebalances on the real broker: a member joins then leaves, and a member loses its partitions."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from streamkit import case_event, committed_and_end, produce_envelopes

from crmpilot.events import Envelope, encode
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService, MessageContext, Output, RuntimeSettings

pytestmark = pytest.mark.integration


def test_a_second_member_joins_then_leaves_and_nothing_is_lost_or_stuck(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    src = unique_topic("join-leave-in", partitions=4, with_dlq=True)
    out = unique_topic("join-leave-out", partitions=4)
    group = unique_name("group")
    n = 400  # paced at 40/s per member: the stream outlasts both hand-overs
    produce_envelopes(kafka_settings.bootstrap, src, (case_event(i, f"case-{i % 40}") for i in range(n)))
    seen: dict[str, list[str]] = defaultdict(list)

    def member(name: str) -> ConsumerService:
        async def handle(envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
            await asyncio.sleep(0.05)
            seen[name].append(envelope.id)
            return [Output(out, ctx.key, encode(envelope))]

        settings = RuntimeSettings(
            group_id=group,
            topics=(src,),
            max_in_flight=2,
            commit_interval_s=0.2,
            revoke_timeout_s=5,
            consumer_overrides={"heartbeat.interval.ms": "500"},
        )
        return ConsumerService(handle, settings, kafka_settings)

    async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"{what}: a={len(seen['a'])} b={len(seen['b'])}"
            await asyncio.sleep(0.05)

    async def main() -> tuple[list[tuple[str, int]], int]:
        a, b = member("a"), member("b")
        run_a = asyncio.create_task(a.run())
        await wait_for(lambda: len(seen["a"]) >= 20, "a starts")
        run_b = asyncio.create_task(b.run())
        await wait_for(lambda: len(seen["b"]) >= 40, "b joins and takes partitions")
        b.stop()  # b leaves with work still on its partitions
        await asyncio.wait_for(run_b, 30)
        handled_by_a_before = len(seen["a"])
        await wait_for(lambda: len({*seen["a"], *seen["b"]}) == n, "a finishes the stream alone", timeout=40)
        assert not run_a.done()
        taken_back = sorted(a.assignment)
        a.stop()
        await asyncio.wait_for(run_a, 30)
        return taken_back, len(seen["a"]) - handled_by_a_before

    taken_back, after_leave = asyncio.run(main())
    assert taken_back == [(src, p) for p in range(4)]  # a took b's partitions back
    assert after_leave > 0
    handled = Counter([*seen["a"], *seen["b"]])
    assert set(handled) == {f"evt-{i}" for i in range(n)}
    assert sum(handled.values()) == n  # both hand-overs drained and committed: no record handled twice
    offsets = committed_and_end(kafka_settings.bootstrap, src, group)
    assert all(c == end for c, end in offsets.values()), offsets


def test_lost_partitions_cancel_their_work_commit_nothing_and_are_consumed_again(
    kafka_settings: KafkaSettings,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler that blocks the event loop (a bug: a synchronous call) past ``max.poll.interval.ms``
    makes librdkafka leave the group: the partitions are *lost*, not revoked. The runtime must cancel
    their in-flight work, commit nothing for them, and consume them again once reassigned."""
    src = unique_topic("lost-in", with_dlq=True)
    out = unique_topic("lost-out")
    group = unique_name("group")
    n = 10
    produce_envelopes(kafka_settings.bootstrap, src, (case_event(i, f"k{i}") for i in range(n)))
    attempts: Counter[int] = Counter()
    cancelled: list[int] = []

    async def handle(envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        attempts[ctx.offset] += 1
        if attempts[ctx.offset] == 1:
            if ctx.offset == 0:
                await asyncio.sleep(0.5)  # let the others start
                time.sleep(8)  # noqa: ASYNC251 - on purpose: blocks the loop: no poll for longer than max.poll.interval.ms
            else:
                try:
                    await asyncio.sleep(60)  # a slow model call, in flight when the partition is lost
                except asyncio.CancelledError:
                    cancelled.append(ctx.offset)
                    raise
        return [Output(out, ctx.key, encode(envelope))]

    settings = RuntimeSettings(
        group_id=group,
        topics=(src,),
        ordering="unordered",
        max_in_flight=n,
        commit_interval_s=0.2,
        consumer_overrides={
            "session.timeout.ms": "6000",
            "max.poll.interval.ms": "6000",
            "heartbeat.interval.ms": "500",
        },
    )
    service = ConsumerService(handle, settings, kafka_settings)

    async def main() -> None:
        task = asyncio.create_task(service.run())
        deadline = time.monotonic() + 60
        try:
            while service.stats.processed < n:
                assert not task.done(), "service stopped"
                assert time.monotonic() < deadline, f"not all handled: {service.stats}, attempts {dict(attempts)}"
                await asyncio.sleep(0.05)
        finally:
            service.stop()
            await asyncio.wait_for(task, 30)

    with caplog.at_level(logging.WARNING, logger="crmpilot.streaming"):
        asyncio.run(main())

    assert any("without commit" in r.getMessage() for r in caplog.records), "on_lost was not called"
    assert sorted(cancelled) == list(range(1, n))  # in-flight work of the lost partition was cancelled
    # consumed again from the last commit once reassigned: even offset 0, whose handler returned, was not committed
    assert all(attempts[o] >= 2 for o in range(n)), dict(attempts)
    ((committed, end),) = committed_and_end(kafka_settings.bootstrap, src, group).values()
    assert committed == end == n
