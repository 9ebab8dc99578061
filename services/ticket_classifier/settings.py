"""Settings of ticket_classifier, from ``CRMPILOT_TICKET_CLASSIFIER_*`` variables.

The model is chosen by ``CRMPILOT_LLM_*`` (see ``crmpilot.llm.LLMSettings``),
Kafka by ``CRMPILOT_KAFKA_*``.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmpilot.streaming import GroupMembershipSettings, RuntimeSettings

# The first retry of a failed event waits 1-2 s (equal jitter), doubling: with the 5 attempts
# an event survives a 15-30 s fault the LLM client does not retry itself (an endpoint that
# answers invalid JSON or off-schema values for a while) before it is dead-lettered. From
# 0.5 s the window was 4-7.5 s, and the chaos suite's 8 s burst of invalid answers
# dead-lettered good events.
RETRY_INITIAL_S = 2.0


class Settings(GroupMembershipSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_TICKET_CLASSIFIER_", frozen=True, extra="ignore")

    group_id: str = Field(default="crmpilot-ticket-classifier", description="Kafka consumer group")
    input_topic: str = Field(default="crm.case.events", description="case events to classify")
    output_topic: str = Field(default="ai.ticket.classified", description="where results go")
    threshold_high: float = Field(default=0.8, ge=0, le=1, description="category confidence to auto-apply in the CRM")
    threshold_low: float = Field(default=0.5, ge=0, le=1, description="below this the result is recorded but not written")
    priority_threshold_high: float = Field(default=0.0, ge=0, le=1, description="priority confidence to auto-apply (0: priority does not hold it back)")
    priority_threshold_low: float = Field(default=0.0, ge=0, le=1, description="below this priority confidence the result is not written")
    sentiment_threshold_high: float = Field(default=0.0, ge=0, le=1, description="sentiment confidence to auto-apply (0: sentiment does not hold it back)")
    sentiment_threshold_low: float = Field(default=0.0, ge=0, le=1, description="below this sentiment confidence the result is not written")
    max_input_tokens: int = Field(default=2000, ge=50, description="token budget of a case description; the rest is cut and recorded")
    max_in_flight: int = Field(default=64, ge=1, description="events handled concurrently (different keys)")
    max_attempts: int = Field(
        default=5, ge=1, description="attempts per event before it is dead-lettered (retried after about 2, 4, 8, 16 s: a window of 15-30 s)"
    )
    log_level: str = "INFO"

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
        return RuntimeSettings(
            group_id=self.group_id,
            topics=(self.input_topic,),
            max_in_flight=self.max_in_flight,
            max_attempts=self.max_attempts,
            backoff_initial_s=RETRY_INITIAL_S,
            **self.membership(),
        )
