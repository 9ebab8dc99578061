"""A ticket classification result as the write-back, revert, budget and metrics tests build it.

One shape for every such test; what a test varies (case, category, review,
event, times, confidence) is an argument.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from crmpilot.events import Envelope, Provenance, ReviewDecision, TicketClassification, result_id_for

__all__ = ["EVENT_TIME", "classification", "classified_event", "live_classification"]

EVENT_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def classification(
    case_id: str,
    *,
    category: str = "Payments",
    review: ReviewDecision = "auto_apply",
    event: str | None = None,
    event_time: datetime = EVENT_TIME,
    processed_at: datetime | None = None,
    confidence: float = 0.91,
) -> TicketClassification:
    """``case_id`` classified as ``category`` by the local model, from source event ``event`` (``evt-<case>``)."""
    event = event or f"evt-{case_id}"
    return TicketClassification(
        result_id=result_id_for(event, "classify_ticket", "v1"),
        review=review,
        case_id=case_id,
        category=category,
        priority="High",
        sentiment="negative",
        language="en",
        queue="billing",
        confidence={"category": confidence},
        rationale="card declined",
        provenance=Provenance(
            provider="local",
            model="m",
            prompt_id="classify_ticket",
            prompt_version="v1",
            prompt_hash="h",
            input_hash="i",
            tokens_in=10,
            tokens_out=0,
            cost_usd=Decimal(0),
            latency_ms=5,
            attempts=1,
            trace_id="t" * 32,
            source_topic="crm.case.events",
            source_partition=0,
            source_offset=7,
            source_event_id=event,
            event_time=event_time,
            processed_at=processed_at or event_time,
        ),
    )


def live_classification(
    case_id: str, *, category: str = "Payments", event: str | None = None, event_time: datetime | None = None
) -> TicketClassification:
    """:func:`classification` as the sandbox tests need it: made now, one result per case and category."""
    return classification(
        case_id,
        category=category,
        event=event or f"evt-{case_id}-{category}",
        event_time=event_time or datetime.now(UTC),
        processed_at=datetime.now(UTC),
        confidence=0.93,
    )


def classified_event(case_id: str, **kwargs: Any) -> Envelope[Any]:
    """:func:`classification` in its ``ai.ticket.classified`` envelope."""
    return Envelope[Any](
        source="crmpilot/test",
        type="ai.ticket.classified",
        schemaversion=1,
        subject=case_id,
        data=classification(case_id, **kwargs),
    )
