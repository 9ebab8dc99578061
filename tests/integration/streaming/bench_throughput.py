"""Rough throughput of the runtime: a 50 ms handler, 1 partition, 200 keys (not a test; run by hand).

Usage: python tests/integration/streaming/bench_throughput.py [BOOTSTRAP]
Prints events/s per ordering mode and max_in_flight, next to the 20 events/s
a sequential loop gets with a 50 ms handler.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic
from streamkit import case_event, produce_envelopes

from crmpilot.events import Envelope, encode
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService, MessageContext, Ordering, Output, RuntimeSettings

HANDLER_S = 0.05


async def measure(kafka: KafkaSettings, src: str, out: str, n: int, ordering: Ordering, max_in_flight: int) -> float:
    first: list[float] = []

    async def handle(envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        if not first:
            first.append(time.perf_counter())
        await asyncio.sleep(HANDLER_S)
        return [Output(out, ctx.key, encode(envelope))]

    settings = RuntimeSettings(
        group_id=f"bench.{uuid.uuid4().hex[:8]}", topics=(src,), ordering=ordering, max_in_flight=max_in_flight
    )
    service = ConsumerService(handle, settings, kafka)
    task = asyncio.create_task(service.run())
    while service.stats.processed < n:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - first[0]
    service.stop()
    await task
    return n / elapsed


def main() -> None:
    kafka = KafkaSettings(bootstrap=sys.argv[1]) if len(sys.argv) > 1 else KafkaSettings()
    admin = AdminClient(kafka.librdkafka())
    tag = uuid.uuid4().hex[:8]
    src, out = f"bench.in.{tag}", f"bench.out.{tag}"
    for f in admin.create_topics([NewTopic(t, 1, -1) for t in (src, src + ".dlq", out)]).values():
        f.result(30)
    n = 6000
    produce_envelopes(kafka.bootstrap, src, (case_event(i, f"key-{i % 200}") for i in range(n)))
    try:
        print(f"handler {HANDLER_S * 1000:.0f} ms, 1 partition, 200 keys; sequential loop: {1 / HANDLER_S:.0f} events/s")
        for ordering, in_flight, count in [
            ("partition", 1, 100),
            ("key", 64, 3000),
            ("key", 200, 6000),
            ("unordered", 200, 6000),
            ("unordered", 500, 6000),
        ]:
            rate = asyncio.run(measure(kafka, src, out, count, ordering, in_flight))  # type: ignore[arg-type]
            print(f"  ordering={ordering:<9} max_in_flight={in_flight:<4} {count:>5} events: {rate:7.0f} events/s")
    finally:
        for f in admin.delete_topics([src, src + ".dlq", out]).values():
            f.result(30)


if __name__ == "__main__":
    main()
