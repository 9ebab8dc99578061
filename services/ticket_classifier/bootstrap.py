"""Composition root of ticket_classifier: settings in, a ready service out."""

from __future__ import annotations

from crmpilot.llm import LLMClient, build_llm_client
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService
from crmpilot.tasks import CLASSIFY_TICKET

from .handler import TicketClassifier
from .settings import Settings


def bootstrap(settings: Settings, *, llm: LLMClient | None = None, kafka: KafkaSettings | None = None) -> ConsumerService:
    client = llm or build_llm_client()
    handler = TicketClassifier(
        llm=client,
        spec=CLASSIFY_TICKET,
        output_topic=settings.output_topic,
        thresholds=settings.thresholds(),
        max_input_tokens=settings.max_input_tokens,
        token_model=str(getattr(client.providers[0], "model", None) or client.providers[0].name),
    )
    return ConsumerService(handler, settings.runtime(), kafka or KafkaSettings())
