"""Contender (b): a faust-streaming agent with ``concurrency=N`` (N = the runner's in-flight), until SIGTERM.

Each result is awaited until the broker acknowledged it (``await (await
topic.send(...))``), like the other contenders. faust's ``concurrency``
shares one stream between N actors: no per-key order (see
``notes/kafka-local.md``); it commits what its actors acknowledged, up to the
first gap, every ``broker_commit_interval``.
"""

from __future__ import annotations

import tempfile

import faust

from crmpilot.events import decode
from tests.bench.contender import contender_args, workload
from tests.bench.workload import Workload


def main() -> None:
    args = contender_args(__doc__.splitlines()[0])
    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        datadir=tempfile.mkdtemp(prefix="bench-faust-"),
        topic_replication_factor=1,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
    )
    src = app.topic(args.src, key_serializer="raw", value_serializer="raw")
    out = app.topic(args.out, key_serializer="raw", value_serializer="raw")
    works: list[Workload] = []

    @app.agent(src, concurrency=args.in_flight)
    async def classify_tickets(stream: faust.StreamT[bytes]) -> None:
        if not works:  # one client (one limiter) for all N actors, made on the worker's loop
            works.append(workload(args))
        async for value in stream:
            key, result = await works[0].classify(decode(value))
            await (await out.send(key=key, value=result))

    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
