"""``RuntimeSettings``: how one consumer service consumes, retries, commits and dead-letters.

A plain frozen pydantic model, not tied to environment variables: each service
embeds it in its own settings (``env_nested_delimiter`` maps e.g.
``CRMPILOT_TICKET_CLASSIFIER_RUNTIME__MAX_IN_FLIGHT``). Connection settings come
from :class:`crmpilot.settings.KafkaSettings`. :meth:`RuntimeSettings.consumer_config`
and :meth:`RuntimeSettings.producer_config` map them to librdkafka keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crmpilot.events import DEFAULT_MAX_BYTES
from crmpilot.settings import KafkaSettings

__all__ = ["RuntimeSettings", "Ordering"]

Ordering = Literal["key", "partition", "unordered"]

# Keys the runtime's correctness depends on; overrides must not change them.
_CONSUMER_OWNED = frozenset(
    {"group.id", "enable.auto.commit", "enable.auto.offset.store", "partition.assignment.strategy"}
)
_PRODUCER_OWNED = frozenset({"enable.idempotence", "acks"})


class RuntimeSettings(BaseModel):
    """Consumer-service knobs; every field has a safe default except the group and topics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group_id: str = Field(min_length=1, description="consumer group (one per service)")
    topics: tuple[str, ...] = Field(min_length=1, description="topics to consume")
    ordering: Ordering = Field(
        default="key",
        description="key: same key in order, keys concurrent; partition: one at a time per partition; "
        "unordered: every record concurrent",
    )
    max_in_flight: int = Field(default=64, ge=1, le=10_000, description="records handled concurrently")
    max_buffered: int | None = Field(
        default=None,
        ge=1,
        description="records fetched and not finished before partitions pause (default: 32 x max_in_flight, at least 1000)",
    )
    max_buffered_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1, description="bytes (keys + values) fetched and not finished before partitions pause"
    )
    max_attempts: int = Field(default=5, ge=1, description="handler attempts per record, first included")
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    backoff_multiplier: float = Field(default=2.0, ge=1)
    max_record_bytes: int = Field(default=DEFAULT_MAX_BYTES, ge=1, description="larger records are poison")
    commit_interval_s: float = Field(default=1.0, gt=0)
    dlq_suffix: str = Field(default=".dlq", min_length=1)
    shutdown_timeout_s: float = Field(default=30.0, ge=0, description="drain time on SIGTERM before abandoning")
    revoke_timeout_s: float = Field(default=10.0, ge=0, description="drain time for revoked partitions")
    startup_timeout_s: float = Field(default=15.0, gt=0, description="wait for cluster metadata at start")
    poll_timeout_s: float = Field(default=0.1, gt=0, le=5)
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    delivery_timeout_ms: int = Field(default=60_000, ge=1_000, description="message.timeout.ms of the producer")
    client_id: str | None = None
    consumer_overrides: Mapping[str, str] = Field(default_factory=dict, description="extra librdkafka consumer keys")
    producer_overrides: Mapping[str, str] = Field(default_factory=dict, description="extra librdkafka producer keys")

    @model_validator(mode="after")
    def _check(self) -> RuntimeSettings:
        if self.max_buffered is not None and self.max_buffered < self.max_in_flight:
            raise ValueError("max_buffered must be >= max_in_flight")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        owned = (_CONSUMER_OWNED & set(self.consumer_overrides)) | (_PRODUCER_OWNED & set(self.producer_overrides))
        if owned:
            raise ValueError(f"these librdkafka keys are set by the runtime and cannot be overridden: {sorted(owned)}")
        return self

    @property
    def buffer_limit(self) -> int:
        """Records buffered before pausing. Generous on purpose: librdkafka drops its prefetched
        records on pause and takes up to ~1 s to fetch again after resume, so pausing must be rare
        and the half-full buffer left at resume should cover that second."""
        return self.max_buffered if self.max_buffered is not None else max(1000, 32 * self.max_in_flight)

    def dlq_topic(self, topic: str) -> str:
        return topic + self.dlq_suffix

    def consumer_config(self, kafka: KafkaSettings) -> dict[str, str | int | bool]:
        """librdkafka consumer keys: manual commits, cooperative-sticky assignment."""
        return {
            **kafka.librdkafka(),
            "client.id": self.client_id or f"{kafka.client_id_prefix}-{self.group_id}",
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": self.auto_offset_reset,
            "partition.assignment.strategy": "cooperative-sticky",
            **self.consumer_overrides,
        }

    def producer_config(self, kafka: KafkaSettings) -> dict[str, str | int | bool]:
        """librdkafka producer keys: idempotent, acks from all in-sync replicas."""
        return {
            **kafka.librdkafka(),
            "client.id": (self.client_id or f"{kafka.client_id_prefix}-{self.group_id}") + "-producer",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": self.delivery_timeout_ms,
            **self.producer_overrides,
        }
