"""Contender (c): crmpilot's consumer runtime (``ConsumerService``, ordering by key), until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from typing import Any

from crmpilot.events import Envelope
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService, MessageContext, Output, RuntimeSettings
from tests.bench.contender import contender_args, workload


async def serve(args: argparse.Namespace) -> int:
    work = workload(args)

    async def handle(envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        key, value = await work.classify(envelope)
        return [Output(args.out, key, value)]

    settings = RuntimeSettings(group_id=args.group, topics=(args.src,), max_in_flight=args.in_flight)
    try:
        return await ConsumerService(handle, settings, KafkaSettings(bootstrap=args.bootstrap)).serve()
    finally:
        await work.aclose()


def main() -> int:
    return asyncio.run(serve(contender_args(__doc__.splitlines()[0])))


if __name__ == "__main__":
    raise SystemExit(main())
