"""A tiny crmpilot service for the crash-safety test: echo every event to an output topic.

Usage: python echo_service.py BOOTSTRAP SOURCE_TOPIC OUTPUT_TOPIC GROUP
Exits 0 on SIGTERM (graceful), 1 on a fatal error.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from collections.abc import Sequence
from typing import Any

from crmpilot.events import Envelope, encode
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService, MessageContext, Output, RuntimeSettings


def main() -> int:
    bootstrap, source, output, group = sys.argv[1:5]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def echo(envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        await asyncio.sleep(random.uniform(0.01, 0.03))
        return [Output(output, ctx.key, encode(envelope))]

    settings = RuntimeSettings(
        group_id=group,
        topics=(source,),
        max_in_flight=8,
        commit_interval_s=0.2,
        consumer_overrides={"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"},
    )
    return asyncio.run(ConsumerService(echo, settings, KafkaSettings(bootstrap=bootstrap)).serve())


if __name__ == "__main__":
    sys.exit(main())
