"""Composition root of ticket_classifier: settings in, a ready service out."""

from __future__ import annotations

from crmpilot.llm import LLMClient, build_llm_client
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService
from crmpilot.tasks import CLASSIFY_TICKET

from .handler import TicketClassifier
from .settings import Settings


def bootstrap(settings: Settings, *, llm: LLMClient | None = None, kafka: KafkaSettings | None = None) -> ConsumerService:
    handler = TicketClassifier(
        llm=llm or build_llm_client(),
        spec=CLASSIFY_TICKET,
        output_topic=settings.output_topic,
        threshold_high=settings.threshold_high,
        threshold_low=settings.threshold_low,
    )
    return ConsumerService(handler, settings.runtime(), kafka or KafkaSettings())
