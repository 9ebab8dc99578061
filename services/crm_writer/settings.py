"""Settings of crm_writer, from ``CRMPILOT_CRM_WRITER_*`` variables.

The CRM connection comes from ``CRMPILOT_SALESFORCE_*`` (see
``crmpilot.crm.connect.SalesforceSettings``), the audit database from
``CRMPILOT_DATABASE_URL``, Kafka from ``CRMPILOT_KAFKA_*``.

API budget: a batch of ``batch_size`` results costs one read per 2,000 records
and one sObject Collections update per 200, so 1,000 results take 6 calls. When Salesforce answers
REQUEST_LIMIT_EXCEEDED, writes pause for ``limit_pause_s``: results wait
(unfinished, so partitions pause once the runtime's buffer is full) and are
retried after the pause, each pause costing one of ``max_attempts``. With the
defaults a result survives at least 8 hours of spent API budget and about 4
hours of CRM outage (:meth:`Settings.retry_window_s`) before it is
dead-lettered; ``crmpilot dlq replay`` brings dead-lettered results back, and
write-back is idempotent.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmpilot.streaming import GroupMembershipSettings, RuntimeSettings
from crmpilot.streaming.retry import backoff_delay


def _run_id() -> str:
    return f"crm_writer-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


class Settings(GroupMembershipSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_CRM_WRITER_", frozen=True, extra="ignore")

    group_id: str = Field(default="crmpilot-crm-writer", description="Kafka consumer group")
    topics: tuple[str, ...] = Field(
        default=("ai.ticket.classified", "ai.email.summarized"),
        description="result topics to write back",
    )
    batch_size: int = Field(
        default=1000,
        ge=1,
        le=2000,
        description="results per write-back batch: one read per 2,000 records, one update per 200",
    )
    batch_delay_s: float = Field(
        default=0.2, gt=0, description="how long a result waits for others to share its API calls"
    )
    max_in_flight: int = Field(
        default=1600, ge=1, description="results in flight (different entities); at least batch_size"
    )
    max_attempts: int = Field(
        default=100, ge=1, description="attempts per result; CRM outages and limits are retried with backoff"
    )
    backoff_max_s: float = Field(default=300.0, gt=0, description="longest wait between two attempts of a result")
    limit_pause_s: float = Field(
        default=300.0, gt=0, description="writes pause this long when the CRM's API limit is reached"
    )
    run_id: str = Field(default_factory=_run_id, description="names this run in the audit (crmpilot crm revert --run)")
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.max_in_flight < self.batch_size:
            raise ValueError("max_in_flight must be at least batch_size, or batches never fill")
        return self

    def runtime(self, enrichment_topics: tuple[str, ...] = ()) -> RuntimeSettings:
        """``enrichment_topics`` (the registry's) are read too, unless ``topics`` was set: then it is the whole list."""
        topics = (
            self.topics
            if "topics" in self.model_fields_set
            else tuple(dict.fromkeys((*self.topics, *enrichment_topics)))
        )
        return RuntimeSettings(
            group_id=self.group_id,
            topics=topics,
            max_in_flight=self.max_in_flight,
            max_attempts=self.max_attempts,
            backoff_max_s=self.backoff_max_s,
            **self.membership(),
        )

    def retry_window_s(self, retry_after: float | None = None) -> float:
        """The least time a result keeps being retried before it is dead-lettered.

        ``retry_after`` is what every failure asks for (``limit_pause_s`` while
        the API limit is spent; None for an outage, where backoff alone counts).
        """
        r = self.runtime()
        return sum(
            backoff_delay(
                n, initial=r.backoff_initial_s, maximum=r.backoff_max_s, multiplier=r.backoff_multiplier,
                retry_after=retry_after, rand=lambda: 0.0,
            )
            for n in range(1, self.max_attempts)
        )  # fmt: skip
