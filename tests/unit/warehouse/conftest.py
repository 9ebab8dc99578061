"""Result and source envelopes for the warehouse unit tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from crmpilot.events import (
    CaseEvent,
    EmailSummary,
    EnrichmentResult,
    Envelope,
    Provenance,
    TicketClassification,
    result_id_for,
)
from tests.scorekit import factor, scored_event, scored_request

EVENT_TIME = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def provenance(source_event_id: str, **overrides: Any) -> Provenance:
    fields: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "model_version": "gpt-4o-mini-2024-07-18",
        "prompt_id": "classify_ticket",
        "prompt_version": "v1",
        "prompt_hash": "a1b2c3d4e5f60718",
        "input_hash": "0" * 32,
        "tokens_in": 120,
        "tokens_out": 30,
        "cost_usd": Decimal("0.000036"),
        "latency_ms": 812.5,
        "attempts": 2,
        "cache_hit": False,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "source_topic": "crm.case.events",
        "source_partition": 3,
        "source_offset": 41,
        "source_event_id": source_event_id,
        "event_time": EVENT_TIME,
        "processed_at": datetime(2024, 5, 1, 9, 30, 2, tzinfo=UTC),
    }
    return Provenance(**(fields | overrides))


@pytest.fixture
def ticket() -> Callable[..., Envelope[TicketClassification]]:
    def make(source_event_id: str = "evt-1", **overrides: Any) -> Envelope[TicketClassification]:
        fields: dict[str, Any] = {
            "result_id": result_id_for(source_event_id, "classify_ticket", "v1"),
            "review": "auto_apply",
            "provenance": provenance(source_event_id),
            "case_id": "500A1",
            "category": "Billing",
            "priority": "High",
            "sentiment": "negative",
            "language": "en",
            "queue": "billing",
            "escalate": True,
            "escalation_reason": "VIP customer",
            "confidence": {"category": 0.93, "priority": 0.81},
            "rationale": "invoice charged twice",
        }
        data = TicketClassification(**(fields | overrides))
        return Envelope[TicketClassification](
            source="crmpilot/ticket_classifier", type="ai.ticket.classified", schemaversion=1,
            subject=data.case_id, data=data,
        )  # fmt: skip

    return make


@pytest.fixture
def email() -> Envelope[EmailSummary]:
    data = EmailSummary(
        result_id=result_id_for("evt-2", "summarize_email", "v1"),
        review="suggest",
        provenance=provenance("evt-2", prompt_id="summarize_email", source_topic="crm.email.events"),
        email_id="02sA1",
        case_id="500A1",
        summary="Customer asks for a refund of a double charge.",
        intent="refund_request",
        sentiment="negative",
        urgency="high",
        action_items=(),
        verified=True,
    )
    return Envelope[EmailSummary](
        source="crmpilot/email_summarizer", type="ai.email.summarized", schemaversion=1, subject="02sA1", data=data
    )


@pytest.fixture
def request_score() -> Envelope[EnrichmentResult]:
    """A lead scored 77 (hot) by the built-in ``score_request`` enrichment, held back (review ``skip``)."""
    data = scored_request(
        provenance(
            "evt-3", prompt_id="score_request", prompt_version="2026-12-08.1", source_topic="erp.request.events"
        ),
        request_id="00QA1",
        score=77,
        factors=(factor("company size", "up", 6, "employees: 240"),),
        risk_flags=("free_mail_domain",),
        next_action="call within 24h",
        confidence=0.64,
        review="skip",
    )
    return scored_event(data)


@pytest.fixture
def case_event() -> Envelope[CaseEvent]:
    return Envelope[CaseEvent](
        id="evt-1",
        source="crm://salesforce/org-1",
        type="crm.case.created",
        schemaversion=1,
        time=EVENT_TIME,
        subject="500A1",
        data=CaseEvent(case_id="500A1", subject="Charged twice", description="Invoice 42 was charged twice."),
    )
