"""Settings of warehouse_writer, from ``CRMPILOT_WAREHOUSE_WRITER_*`` variables.

The database comes from ``CRMPILOT_DATABASE_URL``, Kafka from ``CRMPILOT_KAFKA_*``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmpilot.streaming import GroupMembershipSettings, RuntimeSettings

RESULT_TOPICS = ("ai.ticket.classified", "ai.email.summarized")
SOURCE_TOPICS = ("crm.case.events", "crm.email.events", "erp.request.events", "crm.lead.events")


class Settings(GroupMembershipSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_WAREHOUSE_WRITER_", frozen=True, extra="ignore")

    group_id: str = Field(default="crmpilot-warehouse-writer", description="Kafka consumer group")
    topics: tuple[str, ...] = Field(
        default=RESULT_TOPICS + SOURCE_TOPICS, description="result and source topics to store"
    )
    batch_size: int = Field(default=500, ge=1, le=5000, description="rows per database round trip, at most")
    batch_delay_s: float = Field(default=0.2, gt=0, description="how long a row waits for others to share its batch")
    max_in_flight: int = Field(default=1000, ge=1, description="records in flight (bounds memory)")
    max_attempts: int = Field(
        default=8, ge=1, description="attempts per record; a database outage is retried with backoff"
    )
    log_level: str = "INFO"

    def runtime(self, enrichment_topics: tuple[str, ...] = ()) -> RuntimeSettings:
        """``enrichment_topics`` (the registry's sources and results) are read too, unless ``topics`` was set: then it
        is the whole list."""
        topics = (
            self.topics
            if "topics" in self.model_fields_set
            else tuple(dict.fromkeys((*self.topics, *enrichment_topics)))
        )
        return RuntimeSettings(
            group_id=self.group_id,
            topics=topics,
            ordering="unordered",
            max_in_flight=self.max_in_flight,
            max_attempts=self.max_attempts,
            backoff_max_s=10.0,
            **self.membership(),
        )
