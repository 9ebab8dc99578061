"""Settings of email_summarizer, from ``CRMPILOT_EMAIL_SUMMARIZER_*`` variables.

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
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_EMAIL_SUMMARIZER_", frozen=True, extra="ignore")

    group_id: str = Field(default="crmpilot-email-summarizer", description="Kafka consumer group")
    input_topic: str = Field(default="crm.email.events", description="email events to summarize")
    output_topic: str = Field(default="ai.email.summarized", description="where results go")
    max_words: int = Field(default=60, ge=5, le=400, description="word budget of a summary")
    max_input_tokens: int = Field(default=3000, ge=50, description="token budget of an email body; the rest is cut and recorded")
    threshold_high: float = Field(default=0.8, ge=0, le=1, description="intent confidence to auto-apply a verified summary in the CRM")
    threshold_low: float = Field(
        default=0.0, ge=0, le=1, description="below this the summary is recorded but not written (0: always at least suggested)"
    )
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
            topics=(self.input_topic,),
            max_in_flight=self.max_in_flight,
            max_attempts=self.max_attempts,
            backoff_initial_s=RETRY_INITIAL_S,
            **self.membership(),
        )
