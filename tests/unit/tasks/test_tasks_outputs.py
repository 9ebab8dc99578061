"""The task output models accept only their closed vocabularies; derived fields cannot be chosen."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from crmpilot.enrichments import load_registry
from crmpilot.enrichments.task import output_model
from crmpilot.events.models import EmailSummary, TicketClassification
from crmpilot.tasks import (
    CLASSIFY_TICKET,
    EmailSummaryOutput,
    TicketClassificationOutput,
    category_names,
    classify_ticket_spec,
)
from crmpilot.tasks.scoring import band_for
from crmpilot.tasks.taxonomy import Category


def ticket(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "category": "Payments",
        "queue": "anything",
        "priority": "High",
        "sentiment": "negative",
        "language": "en",
        "escalate": False,
        "escalation_reason": None,
        "confidence": {"category": 0.9, "priority": 0.8, "sentiment": 0.7, "language": 0.99},
        "rationale": "card declined",
    }
    return {**base, **overrides}


def test_category_outside_the_taxonomy_is_rejected() -> None:
    with pytest.raises(ValidationError, match="category must be one of"):
        TicketClassificationOutput.model_validate(ticket(category="HACKED"))
    with pytest.raises(ValidationError):
        TicketClassificationOutput.model_validate(ticket(category="REFUND_APPROVED", priority="Urgent!!"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("priority", "Critical"),
        ("sentiment", "furious"),
        ("language", "english"),
        ("escalation_reason", "boss said so"),
    ],
)
def test_closed_fields_reject_values_outside_their_vocabulary(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        TicketClassificationOutput.model_validate(ticket(**{field: value}))


def test_queue_and_escalate_are_derived_whatever_the_model_said() -> None:
    out = TicketClassificationOutput.model_validate(
        ticket(queue="ceo-inbox", escalate=False, escalation_reason="outage")
    )
    assert out.queue == "billing"
    assert out.escalate is True
    calm = TicketClassificationOutput.model_validate(ticket(escalate=True))
    assert calm.escalate is False


def test_json_schema_publishes_the_taxonomy_as_enums() -> None:
    schema = TicketClassificationOutput.model_json_schema()
    assert schema["properties"]["category"]["enum"] == list(category_names())
    assert "billing" in schema["properties"]["queue"]["enum"]
    assert schema["additionalProperties"] is False


def test_custom_taxonomy_builds_its_own_closed_model_and_prompt() -> None:
    cats = (Category("Hardware", "broken device, replacement", "hw"), Category("Other", "anything else", "general"))
    spec = classify_ticket_spec(cats)
    assert spec is classify_ticket_spec(cats)
    assert "Hardware: broken device, replacement [hw]" in spec.prompt.system
    assert spec.prompt.hash != CLASSIFY_TICKET.prompt.hash
    out = spec.output_model.model_validate(ticket(category="Hardware"))
    assert out.queue == "hw"
    with pytest.raises(ValidationError):
        spec.output_model.model_validate(ticket(category="Payments"))
    with pytest.raises(ValueError):
        classify_ticket_spec((cats[0], cats[0]))


# Result fields the service adds from the event and its own checks, never from the model.
SERVICE_FIELDS = {"result_id", "review", "provenance", "task", "skipped", "truncated_chars"}


def test_outputs_fill_the_result_models() -> None:
    out = TicketClassificationOutput.model_validate(ticket())
    fields = set(TicketClassification.model_fields) - SERVICE_FIELDS - {"case_id"}
    assert fields <= set(out.model_dump())
    summary = EmailSummaryOutput.model_validate(
        {
            "summary": "s",
            "intent": "request",
            "sentiment": "neutral",
            "urgency": "normal",
            "action_items": [{"text": "t", "owner": "support", "due": None, "quote": "q"}],
            "entities": [],
            "confidence": 0.5,
        }
    )
    fields = set(EmailSummary.model_fields) - SERVICE_FIELDS - {"email_id", "case_id", "verified", "grounding_failures"}
    assert fields <= set(summary.model_dump())


def test_the_request_band_follows_the_score_and_risk_flags_are_closed() -> None:
    spec = load_registry([], builtin=True).get("score_request")
    base = {"factors": [], "risk_flags": [], "next_action": "call", "confidence": dict.fromkeys(spec.asked, 0.5)}
    asked = output_model(spec)
    assert "band" not in asked.model_fields, "derived from the score: never asked of the model"
    assert [band_for(s) for s in (85, 70, 69, 40, 39, 0)] == ["hot", "hot", "warm", "warm", "cold", "cold"]
    with pytest.raises(ValidationError):
        asked.model_validate({**base, "score": 101})
    with pytest.raises(ValidationError):
        asked.model_validate({**base, "score": 50, "risk_flags": ["vip_now"]})
    with pytest.raises(ValidationError):
        asked.model_validate({**base, "score": 50, "band": "hot"})


def test_email_intent_is_closed() -> None:
    with pytest.raises(ValidationError):
        EmailSummaryOutput.model_validate(
            {
                "summary": "s",
                "intent": "approve_refund",
                "sentiment": "neutral",
                "urgency": "normal",
                "action_items": [],
                "entities": [],
                "confidence": 0.5,
            }
        )
