"""Settings of request_scorer, from ``CRMPILOT_REQUEST_SCORER_*`` variables.

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
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_REQUEST_SCORER_", frozen=True, extra="ignore")

    group_id: str = Field(default="crmpilot-request-scorer", description="Kafka consumer group")
    input_topics: tuple[str, ...] = Field(
        default=("erp.request.events", "crm.lead.events"),
        min_length=1,
        description="JSON list: request and lead events to score",
    )
    output_topic: str = Field(default="ai.request.scored", description="where results go")
    max_input_tokens: int = Field(
        default=1500, ge=50, description="token budget of a description; the rest is cut and recorded"
    )
    threshold_high: float = Field(default=0.8, ge=0, le=1, description="score confidence to auto-apply in the CRM")
    threshold_low: float = Field(
        default=0.5, ge=0, le=1, description="below this the score is recorded but not written"
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Self:
        if self.threshold_low > self.threshold_high:
            raise ValueError("threshold_low must not exceed threshold_high")
        return self

    def runtime(self) -> RuntimeSettings:
        return self.ai_runtime(self.group_id, self.input_topics)
