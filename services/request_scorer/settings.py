"""Settings of request_scorer, from ``CRMPILOT_REQUEST_SCORER_*`` variables.

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
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_REQUEST_SCORER_", frozen=True, extra="ignore")

    group_id: str = Field(default="crmpilot-request-scorer", description="Kafka consumer group")
    input_topics: tuple[str, ...] = Field(
        default=("erp.request.events", "crm.lead.events"), min_length=1, description="JSON list: request and lead events to score"
    )
    output_topic: str = Field(default="ai.request.scored", description="where results go")
    max_input_tokens: int = Field(default=1500, ge=50, description="token budget of a description; the rest is cut and recorded")
    threshold_high: float = Field(default=0.8, ge=0, le=1, description="score confidence to auto-apply in the CRM")
    threshold_low: float = Field(default=0.5, ge=0, le=1, description="below this the score is recorded but not written")
    max_in_flight: int = Field(default=64, ge=1, description="events handled concurrently (different keys)")
    max_attempts: int = Field(
        default=5, ge=1, description="attempts per event before it is dead-lettered (retried after about 2, 4, 8, 16 s: a window of 15-30 s)"
    )
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Self:
        if self.threshold_low > self.threshold_high:
            raise ValueError("threshold_low must not exceed threshold_high")
        return self

    def runtime(self) -> RuntimeSettings:
        return RuntimeSettings(
            group_id=self.group_id,
            topics=self.input_topics,
            max_in_flight=self.max_in_flight,
            max_attempts=self.max_attempts,
            backoff_initial_s=RETRY_INITIAL_S,
            **self.membership(),
        )
