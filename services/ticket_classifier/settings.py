"""Settings of ticket_classifier, from ``CRMPILOT_TICKET_CLASSIFIER_*`` variables.

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
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_TICKET_CLASSIFIER_", frozen=True, extra="ignore")

    group_id: str = Field(default="crmpilot-ticket-classifier", description="Kafka consumer group")
    input_topic: str = Field(default="crm.case.events", description="case events to classify")
    output_topic: str = Field(default="ai.ticket.classified", description="where results go")
    threshold_high: float = Field(default=0.8, ge=0, le=1, description="category confidence to auto-apply in the CRM")
    threshold_low: float = Field(
        default=0.5, ge=0, le=1, description="below this the result is recorded but not written"
    )
    priority_threshold_high: float = Field(
        default=0.0, ge=0, le=1, description="priority confidence to auto-apply (0: priority does not hold it back)"
    )
    priority_threshold_low: float = Field(
        default=0.0, ge=0, le=1, description="below this priority confidence the result is not written"
    )
    sentiment_threshold_high: float = Field(
        default=0.0, ge=0, le=1, description="sentiment confidence to auto-apply (0: sentiment does not hold it back)"
    )
    sentiment_threshold_low: float = Field(
        default=0.0, ge=0, le=1, description="below this sentiment confidence the result is not written"
    )
    max_input_tokens: int = Field(
        default=2000, ge=50, description="token budget of a case description; the rest is cut and recorded"
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Self:
        for field, (high, low) in self.thresholds().items():
            if low > high:
                raise ValueError(f"the low threshold of {field} must not exceed its high threshold")
        return self

    def thresholds(self) -> dict[str, tuple[float, float]]:
        """Per field: (auto-apply at or above, write as a suggestion at or above)."""
        return {
            "category": (self.threshold_high, self.threshold_low),
            "priority": (self.priority_threshold_high, self.priority_threshold_low),
            "sentiment": (self.sentiment_threshold_high, self.sentiment_threshold_low),
        }

    def runtime(self) -> RuntimeSettings:
        return self.ai_runtime(self.group_id, (self.input_topic,))
