"""Composition root of email_summarizer: settings in, a ready service out."""

from __future__ import annotations

from crmpilot.enrichments.results import token_model
from crmpilot.llm import LLMClient, build_llm_client
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService
from crmpilot.tasks import SUMMARIZE_EMAIL

from .handler import EmailSummarizer
from .settings import Settings


def bootstrap(
    settings: Settings, *, llm: LLMClient | None = None, kafka: KafkaSettings | None = None
) -> ConsumerService:
    client = llm or build_llm_client()
    handler = EmailSummarizer(
        llm=client,
        spec=SUMMARIZE_EMAIL,
        output_topic=settings.output_topic,
        max_words=settings.max_words,
        max_input_tokens=settings.max_input_tokens,
        token_model=token_model(client),
        threshold_high=settings.threshold_high,
        threshold_low=settings.threshold_low,
    )
    return ConsumerService(handler, settings.runtime(), kafka or KafkaSettings())
