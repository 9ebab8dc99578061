"""An echo service started the way every crmpilot service is, through ``crmpilot.service.run_service``.

Usage: ``python lifecycle_service.py`` with ``CRMPILOT_ECHO_SOURCE``, ``CRMPILOT_ECHO_OUTPUT``,
``CRMPILOT_ECHO_GROUP``, ``CRMPILOT_KAFKA_BOOTSTRAP`` and (for the endpoints)
``CRMPILOT_ECHO_HTTP_PORT`` set. Exits 0 on SIGTERM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from crmpilot.events import Envelope, encode
from crmpilot.service import run_service
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService, MessageContext, Output, RuntimeSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_ECHO_", frozen=True, extra="ignore")

    source: str
    output: str
    group: str


def bootstrap(settings: Settings) -> ConsumerService:
    async def echo(envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        return [Output(settings.output, ctx.key, encode(envelope))]

    runtime = RuntimeSettings(group_id=settings.group, topics=(settings.source,), commit_interval_s=0.2)
    return ConsumerService(echo, runtime, KafkaSettings())


if __name__ == "__main__":
    run_service("echo", Settings, bootstrap, __doc__)
