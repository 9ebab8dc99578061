"""Composition root of request_scorer: settings in, a ready service out."""

from __future__ import annotations

from crmpilot.enrichments.results import token_model
from crmpilot.llm import LLMClient, build_llm_client
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService
from crmpilot.tasks import SCORE_REQUEST

from .handler import RequestScorer
from .settings import Settings


def bootstrap(
    settings: Settings, *, llm: LLMClient | None = None, kafka: KafkaSettings | None = None
) -> ConsumerService:
    client = llm or build_llm_client()
    handler = RequestScorer(
        llm=client,
        spec=SCORE_REQUEST,
        output_topic=settings.output_topic,
        max_input_tokens=settings.max_input_tokens,
        token_model=token_model(client),
        threshold_high=settings.threshold_high,
        threshold_low=settings.threshold_low,
    )
    return ConsumerService(handler, settings.runtime(), kafka or KafkaSettings())
