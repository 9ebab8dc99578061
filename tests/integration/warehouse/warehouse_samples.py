"""Result envelopes with full provenance for the warehouse integration tests."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from crmpilot.events import (
    EmailSummary,
    EnrichmentResult,
    Envelope,
    Provenance,
    ReviewDecision,
    TicketClassification,
    result_id_for,
)
from crmpilot.tasks.taxonomy import Priority
from tests.scorekit import factor, scored_event, scored_request

DAY1 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def _provenance(source_event_id: str, prompt_id: str, source_topic: str, event_time: datetime, **kw: Any) -> Provenance:
    fields: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "model_version": "gpt-4o-mini-2024-07-18",
        "prompt_id": prompt_id,
        "prompt_version": "v1",
        "prompt_hash": "a1b2c3d4e5f60718",
        "input_hash": secrets.token_hex(16),
        "tokens_in": 100,
        "tokens_out": 20,
        "cost_usd": Decimal("0.002"),
        "latency_ms": 640.0,
        "attempts": 1,
        "cache_hit": False,
        "trace_id": secrets.token_hex(16),
        "confidence_source": "logprobs",
        "source_topic": source_topic,
        "source_partition": 0,
        "source_offset": 0,
        "source_event_id": source_event_id,
        "event_time": event_time,
        "processed_at": event_time + timedelta(seconds=2),
    }
    return Provenance(**(fields | kw))


def make_ticket(
    source_event_id: str,
    *,
    event_time: datetime = DAY1,
    category: str = "Billing",
    priority: Priority = "High",
    review: ReviewDecision = "auto_apply",
    confidence: dict[str, float] | None = None,
    **provenance: Any,
) -> Envelope[TicketClassification]:
    prompt_version = provenance.get("prompt_version", "v1")
    data = TicketClassification(
        result_id=result_id_for(source_event_id, "classify_ticket", prompt_version),
        review=review,
        provenance=_provenance(source_event_id, "classify_ticket", "crm.case.events", event_time, **provenance),
        case_id=f"case-{source_event_id}",
        category=category,
        priority=priority,
        sentiment="negative",
        language="en",
        queue="billing",
        escalate=False,
        escalation_reason="none needed",
        confidence=confidence or {"category": 0.9, "priority": 0.8},
        rationale="mentions an invoice",
    )
    return Envelope[TicketClassification](
        source="crmpilot/ticket_classifier",
        type="ai.ticket.classified",
        schemaversion=1,
        subject=data.case_id,
        data=data,
    )


def make_email(
    source_event_id: str, *, event_time: datetime = DAY1, review: ReviewDecision = "auto_apply", **provenance: Any
) -> Envelope[EmailSummary]:
    data = EmailSummary(
        result_id=result_id_for(source_event_id, "summarize_email", "v1"),
        review=review,
        provenance=_provenance(source_event_id, "summarize_email", "crm.email.events", event_time, **provenance),
        email_id=f"email-{source_event_id}",
        case_id="case-1",
        summary="Asks for a refund.",
        intent="refund_request",
        sentiment="neutral",
        urgency="normal",
        verified=True,
    )
    return Envelope[EmailSummary](
        source="crmpilot/email_summarizer",
        type="ai.email.summarized",
        schemaversion=1,
        subject=data.email_id,
        data=data,
    )


def make_request(
    source_event_id: str, *, event_time: datetime = DAY1, review: ReviewDecision = "suggest", **provenance: Any
) -> Envelope[EnrichmentResult]:
    """A lead scored 64 (warm) by the built-in ``score_request`` enrichment (``ai.enrichment.completed``)."""
    data = scored_request(
        _provenance(source_event_id, "score_request", "erp.request.events", event_time, **provenance),
        request_id=f"req-{source_event_id}",
        score=64,
        factors=(factor("budget stated", evidence="amount: 5000"),),
        risk_flags=("free_mail_domain",),
        next_action="send pricing",
        review=review,
    )
    return scored_event(data)
