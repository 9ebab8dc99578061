"""Map events and records to warehouse rows (column name → value), without a database.

Both the PostgreSQL adapter and the in-memory fake store exactly these rows, so
a handler's unit test sees the columns an analyst will query. JSON columns hold
plain ``dict``/``list`` values here; the adapter wraps them for ``jsonb``.
Array columns (``grounding_failures``, ``risk_flags``) hold lists of strings.
Every declared enrichment shares one table, ``fact_enrichment``: its outputs are
one JSON column (``bi.<name>`` views give them types, see
:mod:`crmpilot.enrichments.warehouse`).
PostgreSQL text and jsonb cannot hold NUL characters, which valid JSON events
may contain: they are replaced by U+FFFD rather than failing a whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from ..events import EmailSummary, EnrichmentResult, Envelope, TicketClassification
from .records import CrmAuditEntry, DlqEntry, FeedbackEntry, Position

__all__ = [
    "FACT_TABLES",
    "JSON_COLUMNS",
    "raw_event_row",
    "fact_row",
    "audit_row",
    "dlq_row",
    "feedback_row",
    "scrub",
]

JSON_COLUMNS = frozenset({"payload", "result", "confidence_by_field", "outputs", "field_review"})

_PROVENANCE_COLUMNS = (
    "provider", "model", "model_version", "prompt_id", "prompt_version", "prompt_hash", "input_hash",
    "tokens_in", "tokens_out", "cost_usd", "latency_ms", "attempts", "cache_hit", "trace_id", "confidence_source",
    "source_topic", "source_partition", "source_offset", "source_event_id", "event_time", "processed_at",
)  # fmt: skip


def scrub_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` scrubbed (:func:`scrub`)."""
    scrubbed: dict[str, Any] = scrub(row)
    return scrubbed


def scrub(value: Any) -> Any:
    """``value`` with every NUL character in its strings (and dict keys) replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def raw_event_row(envelope: Envelope[Any], position: Position) -> dict[str, Any]:
    """The ``warehouse.raw_events`` row of any event."""
    return scrub_row(
        {
            "event_id": envelope.id,
            "type": envelope.type,
            "schemaversion": envelope.schemaversion,
            "subject": envelope.subject,
            "source": envelope.source,
            "event_time": envelope.time,
            "topic": position.topic,
            "kafka_partition": position.partition,
            "kafka_offset": position.offset,
            "payload": envelope.data.model_dump(mode="json"),
        }
    )


def fact_row(envelope: Envelope[Any], position: Position) -> tuple[str, dict[str, Any]]:
    """The fact table and row of a result event (a ticket classification, email summary or enrichment)."""
    result = envelope.data
    fact = _FACTS.get(type(result))
    if fact is None:
        known = ", ".join(t.__name__ for t in _FACTS)
        raise TypeError(f"{type(result).__name__} is not an AI result; expected one of {known}")
    table, typed_columns = fact
    provenance = result.provenance
    row: dict[str, Any] = {
        "result_id": result.result_id,
        "result_event_id": envelope.id,
        "subject": envelope.subject,
        "task": result.task,
        "review_decision": result.review,
        **typed_columns(result),
        "result": result.model_dump(mode="json"),
        **{column: getattr(provenance, column) for column in _PROVENANCE_COLUMNS},
        "result_topic": position.topic,
        "result_partition": position.partition,
        "result_offset": position.offset,
    }
    return table, scrub(row)


def _ticket_columns(result: TicketClassification) -> dict[str, Any]:
    return {
        "case_id": result.case_id,
        "category": result.category,
        "priority": result.priority,
        "sentiment": result.sentiment,
        "language": result.language,
        "queue": result.queue,
        "escalate": result.escalate,
        "escalation_reason": result.escalation_reason,
        "confidence": min(result.confidence.values(), default=None),
        "confidence_by_field": dict(result.confidence),
        **_input_columns(result),
    }


def _email_columns(result: EmailSummary) -> dict[str, Any]:
    return {
        "email_id": result.email_id,
        "case_id": result.case_id,
        "summary": result.summary,
        "intent": result.intent,
        "sentiment": result.sentiment,
        "urgency": result.urgency,
        "verified": result.verified,
        "action_item_count": len(result.action_items),
        "confidence": result.confidence,
        "entity_count": len(result.entities),
        "grounding_failures": list(result.grounding_failures),
        **_input_columns(result),
    }


def _enrichment_columns(result: EnrichmentResult) -> dict[str, Any]:
    return {
        "enrichment_version": result.enrichment_version,
        "record_id": result.record_id,
        "to_crm": result.to_crm,
        "outputs": result.model_dump(mode="json", include={"outputs"})["outputs"],
        "confidence": min(result.confidence.values(), default=None),
        "confidence_by_field": dict(result.confidence),
        "field_review": dict(result.field_review),
        "grounding_failures": list(result.grounding_failures),
        **_input_columns(result),
    }


def _input_columns(result: TicketClassification | EmailSummary | EnrichmentResult) -> dict[str, Any]:
    return {"truncated_chars": result.truncated_chars, "input_skipped": result.skipped is not None}


_FACTS: dict[type[BaseModel], tuple[str, Callable[[Any], dict[str, Any]]]] = {
    TicketClassification: ("fact_ticket_classification", _ticket_columns),
    EmailSummary: ("fact_email_summary", _email_columns),
    EnrichmentResult: ("fact_enrichment", _enrichment_columns),
}
FACT_TABLES: tuple[str, ...] = tuple(table for table, _ in _FACTS.values())


def audit_row(entry: CrmAuditEntry) -> dict[str, Any]:
    """The ``warehouse.crm_write_audit`` row to insert (``id`` is generated; ``applied_at`` defaults to now)."""
    row = asdict(entry)
    del row["id"]
    row["applied_at"] = entry.applied_at or datetime.now(UTC)
    return scrub_row(row)


def dlq_row(entry: DlqEntry) -> dict[str, Any]:
    """The ``warehouse.dlq_log`` row to insert."""
    row = asdict(entry)
    row["kafka_partition"] = row.pop("partition")
    row["kafka_offset"] = row.pop("offset")
    row["message_key"] = row.pop("key")
    return scrub_row(row)


def feedback_row(entry: FeedbackEntry) -> dict[str, Any]:
    """The ``warehouse.feedback`` row to insert."""
    return scrub_row(asdict(entry))
