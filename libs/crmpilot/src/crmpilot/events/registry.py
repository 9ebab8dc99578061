"""Which payload model belongs to which event type and schema version.

The registry is the single list of event contracts: decoding looks models up
here, ``crmpilot schemas`` generates ``schemas/`` from it.
"""

from __future__ import annotations

from pydantic import BaseModel

from .errors import UnknownEventType, UnknownSchemaVersion
from .models import (
    CaseEvent,
    EmailReceived,
    EmailSummary,
    EnrichmentResult,
    RecordChanged,
    RequestSubmitted,
    TicketClassification,
)

__all__ = ["EVENT_TYPES", "model_for", "latest_version"]

EVENT_TYPES: dict[str, dict[int, type[BaseModel]]] = {
    "crm.case.created": {1: CaseEvent},
    "crm.case.updated": {1: CaseEvent},
    "crm.email.received": {1: EmailReceived},
    "erp.request.submitted": {1: RequestSubmitted},
    "ai.ticket.classified": {1: TicketClassification},
    "ai.email.summarized": {1: EmailSummary},
    "crm.record.created": {1: RecordChanged},
    "crm.record.updated": {1: RecordChanged},
    "ai.enrichment.completed": {1: EnrichmentResult},
}


def model_for(event_type: str, version: int) -> type[BaseModel]:
    versions = EVENT_TYPES.get(event_type)
    if versions is None:
        raise UnknownEventType(f"unknown event type {event_type!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    model = versions.get(version)
    if model is None:
        known = ", ".join(str(v) for v in sorted(versions))
        raise UnknownSchemaVersion(f"{event_type} has no schema version {version}; known: {known}")
    return model


def latest_version(event_type: str) -> int:
    versions = EVENT_TYPES.get(event_type)
    if versions is None:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    return max(versions)
