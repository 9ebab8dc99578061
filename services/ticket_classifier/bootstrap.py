"""Composition root of ticket_classifier: settings in, a ready service out."""

from __future__ import annotations

from crmpilot.enrichments.results import token_model
from crmpilot.llm import LLMClient, LLMSettings, build_llm_client
from crmpilot.llm.base import TaskSpec
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService
from crmpilot.tasks import CLASSIFY_TICKET, TicketClassificationOutput, classify_ticket_spec

from .handler import TicketClassifier
from .settings import Settings


def task_spec(llm: LLMSettings | None = None) -> TaskSpec[TicketClassificationOutput]:
    """The default taxonomy, or a trained local head's own (its labels, in its order)."""
    llm = llm or LLMSettings()
    if llm.resolved_provider != "local":
        return CLASSIFY_TICKET
    from crmpilot.llm.local.trained import LocalHeadSettings, load_head

    head_path = LocalHeadSettings().head
    return CLASSIFY_TICKET if head_path is None else classify_ticket_spec(load_head(head_path).categories)


def bootstrap(
    settings: Settings, *, llm: LLMClient | None = None, kafka: KafkaSettings | None = None
) -> ConsumerService:
    client = llm or build_llm_client()
    handler = TicketClassifier(
        llm=client,
        spec=task_spec(),
        output_topic=settings.output_topic,
        thresholds=settings.thresholds(),
        max_input_tokens=settings.max_input_tokens,
        token_model=token_model(client),
    )
    return ConsumerService(handler, settings.runtime(), kafka or KafkaSettings())
