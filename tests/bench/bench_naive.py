"""Contender (a): the naive loop, one event at a time: poll, classify, produce and flush, commit synchronously.

What a first consumer on confluent-kafka looks like: correct (nothing is
committed before its result is acknowledged) and as slow as the model call.
Runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal

from confluent_kafka import Consumer, Producer

from crmpilot.events import decode
from tests.bench.contender import contender_args, workload


def main() -> None:
    args = contender_args(__doc__.splitlines()[0])
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer(
        {"bootstrap.servers": args.bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 0}
    )
    loop = asyncio.new_event_loop()
    work = workload(args)
    consumer.subscribe([args.src])
    try:
        while not stopping:
            msg = consumer.poll(0.1)
            if msg is None or msg.error() is not None:
                continue
            key, value = loop.run_until_complete(work.classify(decode(msg.value())))
            producer.produce(args.out, value, key)
            producer.flush()
            consumer.commit(message=msg, asynchronous=False)
    finally:
        consumer.close()
        loop.run_until_complete(work.aclose())
        loop.close()


if __name__ == "__main__":
    main()
