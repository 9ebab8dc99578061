"""Consumer lag per partition, read from the broker the way Kafka's ``consumer-groups --describe`` does.

For a group, the rows are the partitions assigned to its members (with their
committed offset, if any) plus the partitions it committed offsets for that no
member holds. ``end`` is the log-end offset (high watermark), ``lag`` is
``end - committed``; a partition without a committed offset has no lag
(``None``, printed ``-`` as Kafka's tool does): the group will start it at its
``auto.offset.reset`` position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException
from confluent_kafka.admin import AdminClient, ConsumerGroupDescription  # type: ignore[attr-defined]  # confluent-kafka's stubs do not re-export these from confluent_kafka.admin

from .broker import TP, end_offsets, unavailable
from .errors import GroupNotFound

__all__ = ["Member", "PartitionLag", "GroupLag", "list_groups", "group_lag", "lag_rows"]


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    client_id: str
    host: str
    partitions: int


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int | None
    member_id: str | None = None
    client_id: str | None = None
    host: str | None = None


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    state: str
    members: tuple[Member, ...]
    partitions: tuple[PartitionLag, ...]

    @property
    def total_lag(self) -> int:
        """Sum of the known lags (partitions without a committed offset count 0)."""
        return sum(p.lag or 0 for p in self.partitions)

    @property
    def uncommitted(self) -> int:
        """Partitions held or known without a committed offset."""
        return sum(p.committed is None for p in self.partitions)


def list_groups(admin: AdminClient, prefix: str, timeout: float) -> list[str]:
    """Names of the consumer groups starting with ``prefix``, sorted."""
    try:
        listing = admin.list_consumer_groups(request_timeout=timeout).result()
    except KafkaException as exc:
        raise unavailable("listing consumer groups", exc) from exc
    return sorted(g.group_id for g in listing.valid if g.group_id.startswith(prefix))


def _state(description: ConsumerGroupDescription) -> str:
    return str(description.state.name).lower().replace("_", "-")


def group_lag(admin: AdminClient, group: str, timeout: float) -> GroupLag:
    """Members, state and per-partition lag of ``group``; raises :class:`GroupNotFound`."""
    try:
        description: ConsumerGroupDescription = admin.describe_consumer_groups([group], request_timeout=timeout)[
            group
        ].result()
        listed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=timeout)[
            group
        ].result()
    except KafkaException as exc:
        raise unavailable(f"describing group {group}", exc) from exc
    committed = {(tp.topic, tp.partition): tp.offset for tp in listed.topic_partitions or () if tp.offset >= 0}
    owners: dict[TP, tuple[str, str, str]] = {}
    members: list[Member] = []
    for m in description.members or ():
        assigned = m.assignment.topic_partitions if m.assignment else []
        members.append(Member(m.member_id, m.client_id, m.host, len(assigned)))
        for tp in assigned:
            owners[(tp.topic, tp.partition)] = (m.member_id, m.client_id, m.host)
    state = _state(description)
    if state == "dead" or (not members and not committed and state in {"empty", "unknown"}):
        raise GroupNotFound(group)
    ends = end_offsets(admin, set(committed) | set(owners), timeout)
    return GroupLag(group, state, tuple(members), tuple(lag_rows(committed, ends, owners)))


def lag_rows(
    committed: dict[TP, int], ends: dict[TP, int], owners: dict[TP, tuple[str, str, str]]
) -> Sequence[PartitionLag]:
    """One row per partition that is committed or owned, sorted by topic and partition."""
    rows = []
    for tp in sorted(set(committed) | set(owners)):
        offset, end = committed.get(tp), ends[tp]
        member, client, host = owners.get(tp, (None, None, None))
        rows.append(
            PartitionLag(tp[0], tp[1], offset, end, None if offset is None else end - offset, member, client, host)
        )
    return rows
