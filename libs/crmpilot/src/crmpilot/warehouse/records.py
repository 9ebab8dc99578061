"""Plain records the warehouse stores besides events: Kafka positions, CRM audit, DLQ log, feedback.

Other services build these (the CRM writer an audit entry per field, the
consumer runtime a DLQ entry per dead-lettered record, the CRM source a feedback
entry per human override) and hand them to a :class:`~crmpilot.warehouse.Warehouse`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

__all__ = ["Position", "KafkaPosition", "AuditStatus", "CrmAuditEntry", "DlqEntry", "FeedbackEntry"]

AuditStatus = Literal[
    "applied", "skipped_human_edit", "skipped_not_found", "skipped_low_confidence", "failed", "reverted"
]


class Position(Protocol):
    """Where a record was read from: a :class:`KafkaPosition`, or the streaming runtime's ``MessageContext``."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


@dataclass(frozen=True, slots=True)
class KafkaPosition:
    """A plain :class:`Position`."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class CrmAuditEntry:
    """One CRM field the writer changed, or decided not to change, and why.

    ``id``, ``applied_at`` and ``reverted_at`` are filled by the warehouse when
    read back; ``applied_at`` left ``None`` on write means "now".
    """

    result_id: str
    sobject: str
    record_id: str
    field: str
    before_value: str | None
    after_value: str | None
    status: AuditStatus
    reason: str | None = None
    trace_id: str | None = None
    run_id: str | None = None
    applied_at: datetime | None = None
    reverted_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class DlqEntry:
    """A record a consumer group moved to a dead-letter topic."""

    consumer_group: str
    topic: str
    partition: int
    offset: int
    error_class: str
    error_code: str
    error_message: str
    attempts: int
    failed_at: datetime
    key: str | None = None
    dlq_topic: str | None = None


@dataclass(frozen=True, slots=True)
class FeedbackEntry:
    """A person changed a field the AI had filled. ``event_id`` makes it idempotent."""

    event_id: str
    sobject: str
    record_id: str
    field: str
    ai_value: str | None
    human_value: str | None
    changed_at: datetime
    changed_by: str | None = None
    result_id: str | None = None
