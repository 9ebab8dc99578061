"""``RuntimeSettings``: how one consumer service consumes, retries, commits and dead-letters.

A plain frozen pydantic model, not tied to environment variables: each service
embeds it in its own settings (``env_nested_delimiter`` maps e.g.
``CRMPILOT_TICKET_CLASSIFIER_RUNTIME__MAX_IN_FLIGHT``). Connection settings come
from :class:`crmpilot.settings.KafkaSettings`. :meth:`RuntimeSettings.consumer_config`
and :meth:`RuntimeSettings.producer_config` map them to librdkafka keys.

Group membership (``session_timeout_ms``, ``heartbeat_interval_ms``,
``max_poll_interval_ms``, ``group_instance_id``, ``liveness_timeout_s``, ``leave_group_on_stop``) is
also what services expose from their environment, through
:class:`GroupMembershipSettings`.

Static membership (``group_instance_id`` set): a SIGKILLed or restarted instance
that comes back with the same id within ``session_timeout_ms`` takes its
partitions back at once, without a rebalance and without waiting for its old
session to expire; a static member does not leave its group on a clean stop
either (KIP-345), so an instance that stops for good would hold its partitions until
``session_timeout_ms`` has passed: the runtime therefore makes a static member
leave on a graceful stop (``leave_group_on_stop``, default on; see
:class:`~crmpilot.streaming.runtime.ConsumerService`), and only a crash keeps the
partitions for the restart. The launchers (``infra/services.sh``,
``docker-compose.yml``, the chaos suite) set ``<service>-<replica>`` and 30 s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crmpilot.events import DEFAULT_MAX_BYTES
from crmpilot.settings import KafkaSettings

__all__ = ["GroupMembershipSettings", "Ordering", "RuntimeSettings"]

Ordering = Literal["key", "partition", "unordered"]

# Keys the runtime's correctness depends on; overrides must not change them.
_CONSUMER_OWNED = frozenset(
    {"group.id", "enable.auto.commit", "enable.auto.offset.store", "partition.assignment.strategy"}
)
_PRODUCER_OWNED = frozenset({"enable.idempotence", "acks"})
# librdkafka key -> field (a consumer_overrides entry wins, for compatibility)
_TIMING = {
    "session.timeout.ms": "session_timeout_ms",
    "heartbeat.interval.ms": "heartbeat_interval_ms",
    "max.poll.interval.ms": "max_poll_interval_ms",
}
_STATS_INTERVAL_MS = 1000
# Kafka checks group.instance.id like a topic name (JoinGroupRequest.validateGroupInstanceId)
_INSTANCE_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_INSTANCE_ID_MAX = 249


def _check_instance_id(value: str | None) -> str | None:
    """``group.instance.id`` as the broker accepts it: 1-249 of ``[A-Za-z0-9._-]``, not ``.`` or ``..``
    (librdkafka sends any string; the broker would refuse it only at JoinGroup)."""
    if value is None:
        return None
    if not value or len(value) > _INSTANCE_ID_MAX or value in (".", "..") or not set(value) <= _INSTANCE_ID_CHARS:
        raise ValueError(
            f"group_instance_id {value[:60]!r} is not a valid group.instance.id: 1-{_INSTANCE_ID_MAX} characters "
            "of A-Z a-z 0-9 . _ - (not '.' or '..'), e.g. ticket_classifier-1"
        )
    return value


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
        description="records fetched and not finished before partitions pause (default: 32 x max_in_flight, at "
        "least 1000)",
    )
    max_buffered_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1,
        description="bytes (keys + values) fetched and not finished before partitions pause",
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
    session_timeout_ms: int = Field(
        default=45_000,
        ge=1_000,
        le=3_600_000,
        description="session.timeout.ms: without a heartbeat for this long the broker drops the member and rebalances "
        "(the broker accepts group.min/max.session.timeout.ms, 6 s-30 min by default)",
    )
    heartbeat_interval_ms: int = Field(
        default=3_000,
        ge=100,
        description="heartbeat.interval.ms: heartbeat period (at most a third of the session timeout)",
    )
    max_poll_interval_ms: int = Field(
        default=300_000,
        ge=1_000,
        description="max.poll.interval.ms: the member leaves its group when the consumer thread does not poll for this "
        "long "
        "(also the rebalance timeout); at least session_timeout_ms",
    )
    group_instance_id: str | None = Field(
        default=None,
        min_length=1,
        description="group.instance.id: static membership, unique per instance and stable across restarts "
        "(<service>-<replica>; A-Z a-z 0-9 . _ -); a restarted instance gets its partitions back without a rebalance "
        "if it returns within session_timeout_ms; on a graceful stop it leaves the group (leave_group_on_stop) "
        "(unset: dynamic membership)",
    )
    liveness_timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="/healthz turns unhealthy after this long without group membership (unset: 2 x session_timeout_ms)",
    )
    leave_group_on_stop: bool = Field(
        default=True,
        description="a static member (group_instance_id set) leaves its group on a graceful stop (SIGTERM), so the "
        "other "
        "instances take its partitions at their next heartbeat instead of after session_timeout_ms; false: it stays "
        "(KIP-345), for instances that always come back within the session (a restart in place), at the cost of the "
        "partitions idling for the whole session when one does not (scale-down, a stop for good)",
    )
    rebuild_consumer: bool = Field(
        default=True,
        description="past the liveness limit out of its group, close the Kafka consumer and subscribe a new one "
        "(librdkafka consumers have been seen never to rejoin after a coordinator restart)",
    )
    consumer_overrides: Mapping[str, str] = Field(default_factory=dict, description="extra librdkafka consumer keys")
    producer_overrides: Mapping[str, str] = Field(default_factory=dict, description="extra librdkafka producer keys")

    _instance_id = field_validator("group_instance_id")(_check_instance_id)

    @model_validator(mode="after")
    def _check(self) -> RuntimeSettings:
        if self.max_buffered is not None and self.max_buffered < self.max_in_flight:
            raise ValueError("max_buffered must be >= max_in_flight")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        session, heartbeat, max_poll = (self.consumer_timing(k) for k in _TIMING)
        if heartbeat >= session:
            raise ValueError("heartbeat.interval.ms must be lower than session.timeout.ms (a third of it is usual)")
        if max_poll < session:
            raise ValueError("max.poll.interval.ms must be >= session.timeout.ms (librdkafka refuses it otherwise)")
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

    def consumer_timing(self, key: str) -> int:
        """The effective ``session.timeout.ms``, ``heartbeat.interval.ms`` or ``max.poll.interval.ms``
        (a ``consumer_overrides`` entry wins over the field)."""
        value = self.consumer_overrides.get(key)
        return int(value) if value is not None else int(getattr(self, _TIMING[key]))

    @property
    def member_timeout_s(self) -> float:
        """How long the member may be out of its group before ``/healthz`` says it is not alive."""
        if self.liveness_timeout_s is not None:
            return self.liveness_timeout_s
        return 2 * self.consumer_timing("session.timeout.ms") / 1000

    @property
    def poll_stall_s(self) -> float:
        """How long the consumer thread may go without a poll before ``/healthz`` says it is stuck:
        ``min(max.poll.interval.ms, 60 s)`` plus ``revoke_timeout_s`` (a revoke holds one poll that long)."""
        return min(self.consumer_timing("max.poll.interval.ms") / 1000, 60.0) + self.revoke_timeout_s

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
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": self.heartbeat_interval_ms,
            "max.poll.interval.ms": self.max_poll_interval_ms,
            **({"group.instance.id": self.group_instance_id} if self.group_instance_id else {}),
            # the group handler's state feeds the liveness rule (crmpilot.streaming.liveness)
            "statistics.interval.ms": _STATS_INTERVAL_MS,
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


class GroupMembershipSettings(BaseModel):
    """The group-membership settings every consumer service reads from its environment.

    A mixin of a service's ``Settings`` (``class Settings(GroupMembershipSettings, BaseSettings)``):
    the fields become ``<PREFIX>SESSION_TIMEOUT_MS``, ``<PREFIX>HEARTBEAT_INTERVAL_MS``,
    ``<PREFIX>MAX_POLL_INTERVAL_MS``, ``<PREFIX>GROUP_INSTANCE_ID``,
    ``<PREFIX>LIVENESS_TIMEOUT_S`` and ``<PREFIX>LEAVE_GROUP_ON_STOP``, listed by ``--help``; :meth:`membership`
    passes them on
    to :class:`RuntimeSettings`.
    """

    session_timeout_ms: int = RuntimeSettings.model_fields["session_timeout_ms"]  # type: ignore[assignment]  # RuntimeSettings\' field itself (default, bounds, description)
    heartbeat_interval_ms: int = RuntimeSettings.model_fields["heartbeat_interval_ms"]  # type: ignore[assignment]  # RuntimeSettings\' field itself (default, bounds, description)
    max_poll_interval_ms: int = RuntimeSettings.model_fields["max_poll_interval_ms"]  # type: ignore[assignment]  # RuntimeSettings\' field itself (default, bounds, description)
    group_instance_id: str | None = RuntimeSettings.model_fields["group_instance_id"]  # type: ignore[assignment]  # RuntimeSettings\' field itself (default, bounds, description)
    liveness_timeout_s: float | None = RuntimeSettings.model_fields["liveness_timeout_s"]  # type: ignore[assignment]  # RuntimeSettings\' field itself (default, bounds, description)
    leave_group_on_stop: bool = RuntimeSettings.model_fields["leave_group_on_stop"]  # type: ignore[assignment]  # RuntimeSettings\' field itself (default, bounds, description)

    _instance_id = field_validator("group_instance_id")(_check_instance_id)

    @model_validator(mode="after")
    def _check_membership(self) -> GroupMembershipSettings:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be lower than session_timeout_ms (a third of it is usual)")
        if self.max_poll_interval_ms < self.session_timeout_ms:
            raise ValueError("max_poll_interval_ms must be >= session_timeout_ms")
        return self

    def membership(self) -> dict[str, Any]:
        """Keyword arguments of :class:`RuntimeSettings`."""
        return {name: getattr(self, name) for name in _MEMBERSHIP_FIELDS}


_MEMBERSHIP_FIELDS = tuple(GroupMembershipSettings.model_fields)
