"""Settings of the enricher, from ``CRMPILOT_ENRICHER_*`` variables.

Which spec runs is ``enrichment`` (or ``--enrichment``): a built-in one
(``score_request``) or one of ``CRMPILOT_ENRICHMENTS_DIR``. Topics and group default to the spec's
(``crmpilot-enricher-<name>``); the overrides exist for running a second copy
beside the first (a test, a backfill).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmpilot.enrichments import EnrichmentSpec
from crmpilot.streaming import RuntimeSettings
from crmpilot.tasks.service_settings import AIServiceSettings


class Settings(AIServiceSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_ENRICHER_", frozen=True, extra="ignore")

    enrichment: str = Field(
        min_length=1,
        description="the enrichment to run: a built-in spec (score_request) or one from CRMPILOT_ENRICHMENTS_DIR",
    )
    group_id: str | None = Field(default=None, description="Kafka consumer group (default crmpilot-enricher-<name>)")
    input_topics: tuple[str, ...] | None = Field(
        default=None, description="JSON list: the topics to read (default: the spec's source.topics)"
    )
    output_topic: str | None = Field(
        default=None, description="where results go (default: the spec's output_topic, ai.<name>)"
    )
    hook_modules: tuple[str, ...] = Field(
        default=(),
        description="JSON list: Python modules imported at start; they register the spec's named hooks (@hook)",
    )

    def runtime(self, spec: EnrichmentSpec) -> RuntimeSettings:
        return self.ai_runtime(self.group_id or spec.group, self.input_topics or spec.source.topics)
