"""Talking to the cluster for the operator tools: clients, reachability, partitions, end offsets.

Every call takes a timeout and translates ``KafkaException`` into
:class:`~crmpilot.ops.errors.BrokerUnavailable` (or :class:`TopicNotFound`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]  # confluent-kafka's stubs do not re-export these from confluent_kafka.admin

from crmpilot.settings import KafkaSettings

from .errors import BrokerUnavailable, TopicNotFound

__all__ = ["TP", "Cluster", "admin_client", "reader", "describe_cluster", "partitions_of", "end_offsets", "unavailable"]

TP = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Cluster:
    """What the cluster says about itself."""

    bootstrap: str
    brokers: int
    topics: Mapping[str, int]
    """topic name → partition count"""


def admin_client(kafka: KafkaSettings, name: str) -> AdminClient:
    return AdminClient({**kafka.librdkafka(), "client.id": f"{kafka.client_id_prefix}-ops-{name}", "log_level": 0})


def reader(kafka: KafkaSettings, name: str, **overrides: Any) -> Consumer:
    """A consumer for reading by assignment: its throwaway group never commits."""
    return Consumer(
        {
            **kafka.librdkafka(),
            "client.id": f"{kafka.client_id_prefix}-ops-{name}",
            "group.id": f"{kafka.client_id_prefix}-ops-{name}-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "log_level": 0,
            **overrides,
        }
    )


def unavailable(what: str, exc: KafkaException) -> BrokerUnavailable:
    err = exc.args[0] if exc.args else None
    detail = f"{err.name()}: {err.str()}" if isinstance(err, KafkaError) else str(exc)
    return BrokerUnavailable(f"{what} failed: {detail}")


def describe_cluster(admin: AdminClient, bootstrap: str, timeout: float) -> Cluster:
    """Broker count and topic names; raises :class:`BrokerUnavailable` if no broker answers."""
    try:
        meta = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise unavailable(f"reaching Kafka at {bootstrap}", exc) from exc
    return Cluster(bootstrap, len(meta.brokers), {name: len(t.partitions) for name, t in meta.topics.items()})


def partitions_of(admin: AdminClient, topic: str, timeout: float) -> list[int]:
    try:
        meta = admin.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise unavailable(f"reading metadata of {topic}", exc) from exc
    info = meta.topics.get(topic)
    if info is None or info.error is not None and info.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
        raise TopicNotFound(topic)
    return sorted(info.partitions)


def end_offsets(admin: AdminClient, tps: Iterable[TP], timeout: float) -> dict[TP, int]:
    """The log-end offset (high watermark) of each partition, as Kafka's tools report it."""
    request = {TopicPartition(t, p): OffsetSpec.latest() for t, p in tps}  # type: ignore[no-untyped-call]  # OffsetSpec.latest is unannotated in confluent-kafka
    if not request:
        return {}
    try:
        futures = admin.list_offsets(request, request_timeout=timeout)
        return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}
    except KafkaException as exc:
        raise unavailable("listing end offsets", exc) from exc
