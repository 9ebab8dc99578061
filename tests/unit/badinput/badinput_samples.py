"""One valid record per registered event type, as the JSON object a producer would send.

Built from the models (so fields with defaults follow the models), dumped in
JSON mode: the bad-input tests then break them in every way they can.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from crmpilot.events import (
    CaseEvent,
    EmailReceived,
    EmailSummary,
    Envelope,
    Provenance,
    RecordChanged,
    RequestSubmitted,
    TicketClassification,
)
from tests.scorekit import factor, scored_request

EVENT_TIME = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def provenance() -> Provenance:
    return Provenance(
        provider="openai",
        model="gpt-4o-mini",
        prompt_id="p",
        prompt_version="v1",
        prompt_hash="h" * 16,
        input_hash="i" * 32,
        tokens_in=100,
        tokens_out=20,
        cost_usd=Decimal("0.0001"),
        latency_ms=120.0,
        attempts=1,
        trace_id="a" * 32,
        source_topic="crm.case.events",
        source_partition=0,
        source_offset=7,
        source_event_id="evt-1",
        event_time=EVENT_TIME,
        processed_at=EVENT_TIME,
    )


SAMPLES: dict[str, BaseModel] = {
    "crm.case.created": CaseEvent(
        case_id="500000000000001AAA",
        subject="Card declined",
        description="My card was declined twice.",
        origin="Web",
    ),
    "crm.case.updated": CaseEvent(
        case_id="500000000000001AAA",
        subject="Card declined",
        description="Still declined.",
        changed_fields=("Description",),
        last_modified=EVENT_TIME,
    ),
    "crm.email.received": EmailReceived(
        email_id="02s000000000001AAA",
        case_id="500000000000001AAA",
        from_address="maria@example.com",
        subject="Invoice",
        body="Please send the invoice again.",
        received_at=EVENT_TIME,
    ),
    "erp.request.submitted": RequestSubmitted(
        request_id="00Q000000000001AAA",
        kind="lead",
        company="Northwind",
        contact_email="ben@northwind.example",
        employees=240,
        amount=Decimal(12000),
        currency="EUR",
        description="50 seats",
    ),
    "ai.ticket.classified": TicketClassification(
        result_id="res_" + "0" * 32,
        review="auto_apply",
        provenance=provenance(),
        case_id="500000000000001AAA",
        category="Payments",
        priority="High",
        sentiment="negative",
        language="en",
        queue="billing",
        confidence={"category": 0.9},
        rationale="card declined",
    ),
    "ai.email.summarized": EmailSummary(
        result_id="res_" + "1" * 32,
        review="suggest",
        provenance=provenance(),
        email_id="02s000000000001AAA",
        summary="Customer asks for the invoice.",
        intent="invoice_request",
        sentiment="neutral",
        urgency="normal",
        verified=True,
    ),
    "crm.record.created": RecordChanged(
        sobject="Opportunity",
        record_id="006000000000001AAA",
        fields={"Name": "Acme", "Description": "Renewal at risk.", "Amount": 1200.0},
    ),
    "crm.record.updated": RecordChanged(
        sobject="Opportunity",
        record_id="006000000000001AAA",
        fields={"Description": "Lost."},
        changed_fields=("Description",),
        last_modified=EVENT_TIME,
    ),
    # the built-in score_request enrichment's result, on ai.request.scored: of every output kind (a number, items,
    # a multi-enum, text and an enum), the one every deployment runs
    "ai.enrichment.completed": scored_request(
        provenance(),
        request_id="00Q000000000001AAA",
        score=72,
        factors=(factor("company size", "up", 6, "employees: 240"),),
        risk_flags=("no_budget",),
        next_action="call",
        result_id="res_" + "2" * 32,
    ),
}


def envelope_obj(event_type: str, **overrides: Any) -> dict[str, Any]:
    """The sample of ``event_type`` as a JSON object (a fresh copy)."""
    env = Envelope[Any](
        id="evt-1",
        source="crm://test",
        type=event_type,
        schemaversion=1,
        subject="500000000000001AAA",
        time=EVENT_TIME,
        data=SAMPLES[event_type],
    )
    obj: dict[str, Any] = json.loads(env.model_dump_json())
    obj.update(overrides)
    return obj


def raw(obj: Any) -> bytes:
    return json.dumps(obj).encode("utf-8")
