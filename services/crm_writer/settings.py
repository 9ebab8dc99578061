"""Settings of crm_writer, from ``CRMPILOT_CRM_WRITER_*`` variables.

The CRM connection comes from ``CRMPILOT_SALESFORCE_*`` (see
``crmpilot.crm.connect.SalesforceSettings``), the audit database from
``CRMPILOT_DATABASE_URL``, Kafka from ``CRMPILOT_KAFKA_*``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmpilot.streaming import RuntimeSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_CRM_WRITER_", frozen=True, extra="ignore")

    group_id: str = Field(default="crmpilot-crm-writer", description="Kafka consumer group")
    topics: tuple[str, ...] = Field(
        default=("ai.ticket.classified", "ai.email.summarized", "ai.request.scored"), description="result topics to write back"
    )
    batch_size: int = Field(default=200, ge=1, le=200, description="records per sObject Collections call (Salesforce allows 200)")
    batch_delay_s: float = Field(default=0.2, gt=0, description="how long a result waits for others to share its API call")
    max_in_flight: int = Field(default=400, ge=1, description="results in flight (different entities)")
    max_attempts: int = Field(default=8, ge=1, description="attempts per result; CRM outages and limits are retried with backoff")
    log_level: str = "INFO"

    def runtime(self) -> RuntimeSettings:
        return RuntimeSettings(
            group_id=self.group_id,
            topics=self.topics,
            max_in_flight=self.max_in_flight,
            max_attempts=self.max_attempts,
            backoff_max_s=60.0,
        )
