"""Settings every AI service (ticket_classifier, email_summarizer, enricher) shares.

A mixin of a service's ``Settings`` (``class Settings(AIServiceSettings, BaseSettings)``):
its fields become ``<PREFIX>MAX_IN_FLIGHT``, ``<PREFIX>MAX_ATTEMPTS``, ``<PREFIX>LOG_LEVEL``
and the group-membership ones, listed by ``--help``; :meth:`ai_runtime` builds the
:class:`~crmpilot.streaming.RuntimeSettings` with the AI services' retry window.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from crmpilot.streaming import GroupMembershipSettings, RuntimeSettings

__all__ = ["RETRY_INITIAL_S", "AIServiceSettings"]

# The first retry of a failed event waits 1-2 s (equal jitter), doubling: with the 5 attempts
# an event survives a 15-30 s fault the LLM client does not retry itself (an endpoint that
# answers invalid JSON or off-schema values for a while) before it is dead-lettered. From
# 0.5 s the window was 4-7.5 s, and the chaos suite's 8 s burst of invalid answers
# dead-lettered good events.
RETRY_INITIAL_S = 2.0


class AIServiceSettings(GroupMembershipSettings):
    max_in_flight: int = Field(default=64, ge=1, description="events handled concurrently (different keys)")
    max_attempts: int = Field(
        default=5,
        ge=1,
        description="attempts per event before it is dead-lettered (retried after about 2, 4, 8, 16 s: a window of "
        "15-30 s)",
    )
    log_level: str = "INFO"

    def ai_runtime(self, group_id: str, topics: Sequence[str]) -> RuntimeSettings:
        """The consumer runtime of an AI service reading ``topics`` as ``group_id``."""
        return RuntimeSettings(
            group_id=group_id,
            topics=tuple(topics),
            max_in_flight=self.max_in_flight,
            max_attempts=self.max_attempts,
            backoff_initial_s=RETRY_INITIAL_S,
            **self.membership(),
        )
