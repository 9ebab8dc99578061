"""Settings of email_summarizer, from ``CRMPILOT_EMAIL_SUMMARIZER_*`` variables.

The model is chosen by ``CRMPILOT_LLM_*`` (see ``crmpilot.llm.LLMSettings``),
Kafka by ``CRMPILOT_KAFKA_*``.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmpilot.streaming import RuntimeSettings
from crmpilot.tasks.service_settings import AIServiceSettings


class Settings(AIServiceSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_EMAIL_SUMMARIZER_", frozen=True, extra="ignore")

    group_id: str = Field(default="crmpilot-email-summarizer", description="Kafka consumer group")
    input_topic: str = Field(default="crm.email.events", description="email events to summarize")
    output_topic: str = Field(default="ai.email.summarized", description="where results go")
    max_words: int = Field(default=60, ge=5, le=400, description="word budget of a summary")
    max_input_tokens: int = Field(
        default=3000, ge=50, description="token budget of an email body; the rest is cut and recorded"
    )
    threshold_high: float = Field(
        default=0.8, ge=0, le=1, description="intent confidence to auto-apply a verified summary in the CRM"
    )
    threshold_low: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="below this the summary is recorded but not written (0: always at least suggested)",
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Self:
        if self.threshold_low > self.threshold_high:
            raise ValueError("threshold_low must not exceed threshold_high")
        return self

    def runtime(self) -> RuntimeSettings:
        return self.ai_runtime(self.group_id, (self.input_topic,))
