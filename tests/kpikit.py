"""AI result envelopes with just the fields the KPI aggregator reads set on purpose (unit and stack tests)."""

from __future__ import annotations

from datetime import UTC, datetime
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
from crmpilot.tasks.scoring import Band
from crmpilot.tasks.summarize_email import Urgency
from tests.scorekit import scored_event, scored_request

AT = datetime(2024, 5, 1, 9, 0, 30, tzinfo=UTC)


def provenance(source_event_id: str, *, latency_ms: float = 500.0, cost_usd: str = "0.002", processed_at: datetime = AT,
               cache_hit: bool = False) -> Provenance:  # fmt: skip
    return Provenance(
        provider="openai",
        model="gpt-4o-mini",
        prompt_id="p",
        prompt_version="v1",
        prompt_hash="h",
        input_hash="i",
        tokens_in=100,
        tokens_out=20,
        cost_usd=Decimal(cost_usd),
        latency_ms=latency_ms,
        attempts=1,
        cache_hit=cache_hit,
        source_topic="crm.case.events",
        source_partition=0,
        source_offset=0,
        source_event_id=source_event_id,
        event_time=processed_at,
        processed_at=processed_at,
    )


def ticket(
    sid: str, *, category: str = "Billing", review: ReviewDecision = "auto_apply", **prov: Any
) -> Envelope[TicketClassification]:
    data = TicketClassification(
        result_id=result_id_for(sid, "classify_ticket", "v1"), review=review, provenance=provenance(sid, **prov),
        case_id=f"case-{sid}", category=category, priority="High", sentiment="neutral", language="en", queue="q",
        confidence={"category": 0.9}, rationale="r",
    )  # fmt: skip
    return Envelope[TicketClassification](
        source="t", type="ai.ticket.classified", schemaversion=1, subject=data.case_id, data=data
    )


def email(
    sid: str, *, urgency: Urgency = "high", review: ReviewDecision = "suggest", **prov: Any
) -> Envelope[EmailSummary]:
    data = EmailSummary(
        result_id=result_id_for(sid, "summarize_email", "v1"),
        review=review,
        provenance=provenance(sid, **prov),
        email_id=f"email-{sid}",
        summary="s",
        intent="refund_request",
        sentiment="neutral",
        urgency=urgency,
        verified=True,
    )
    return Envelope[EmailSummary](
        source="t", type="ai.email.summarized", schemaversion=1, subject=data.email_id, data=data
    )


SCORES: dict[Band, int] = {"hot": 90, "warm": 55, "cold": 20}


def request(
    sid: str, *, band: Band = "hot", review: ReviewDecision = "skip", **prov: Any
) -> Envelope[EnrichmentResult]:
    """A lead scored by the built-in ``score_request`` enrichment, its score in ``band``."""
    data = scored_request(provenance(sid, **prov), request_id=f"req-{sid}", score=SCORES[band], review=review)
    return scored_event(data, source="t")
