"""Event contracts: the envelope, typed payloads, and strict decoding."""

from .envelope import DEFAULT_MAX_BYTES, MAX_FUTURE_SKEW, Envelope, decode, encode, new_event_id
from .errors import (
    FutureTimestamp,
    InvalidEncoding,
    InvalidJSON,
    InvalidPayload,
    OversizePayload,
    PoisonMessage,
    UnknownEventType,
    UnknownSchemaVersion,
)
from .models import (
    CaseEvent,
    EmailReceived,
    EmailSummary,
    EnrichmentResult,
    Provenance,
    RecordChanged,
    RequestSubmitted,
    ReviewDecision,
    TicketClassification,
    result_id_for,
)
from .registry import EVENT_TYPES, latest_version, model_for

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EVENT_TYPES",
    "CaseEvent",
    "EmailReceived",
    "EmailSummary",
    "EnrichmentResult",
    "Envelope",
    "FutureTimestamp",
    "InvalidEncoding",
    "InvalidJSON",
    "InvalidPayload",
    "MAX_FUTURE_SKEW",
    "OversizePayload",
    "PoisonMessage",
    "Provenance",
    "RecordChanged",
    "RequestSubmitted",
    "ReviewDecision",
    "TicketClassification",
    "UnknownEventType",
    "UnknownSchemaVersion",
    "decode",
    "encode",
    "latest_version",
    "model_for",
    "new_event_id",
    "result_id_for",
]
