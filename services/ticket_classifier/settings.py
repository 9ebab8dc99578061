"""Settings of ticket_classifier, from ``CRMPILOT_TICKET_CLASSIFIER_*`` variables.

The model is chosen by ``CRMPILOT_LLM_*`` (see ``crmpilot.llm.LLMSettings``),
Kafka by ``CRMPILOT_KAFKA_*``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmpilot.streaming import RuntimeSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_TICKET_CLASSIFIER_", frozen=True, extra="ignore")

    group_id: str = Field(default="crmpilot-ticket-classifier", description="Kafka consumer group")
    input_topic: str = Field(default="crm.case.events", description="case events to classify")
    output_topic: str = Field(default="ai.ticket.classified", description="where results go")
    threshold_high: float = Field(default=0.8, ge=0, le=1, description="category confidence to auto-apply in the CRM")
    threshold_low: float = Field(default=0.5, ge=0, le=1, description="below this the result is recorded but not written")
    max_in_flight: int = Field(default=64, ge=1, description="events handled concurrently (different keys)")
    max_attempts: int = Field(default=5, ge=1, description="attempts per event before it is dead-lettered")
    log_level: str = "INFO"

    def runtime(self) -> RuntimeSettings:
        return RuntimeSettings(
            group_id=self.group_id,
            topics=(self.input_topic,),
            max_in_flight=self.max_in_flight,
            max_attempts=self.max_attempts,
        )
