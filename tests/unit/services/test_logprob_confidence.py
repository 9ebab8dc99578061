"""Confidence from token log-probabilities: measured where the endpoint sends them, reported where it does not."""

from __future__ import annotations

import math

import pytest

from crmpilot.events import CaseEvent, TicketClassification
from crmpilot.llm.logprobs import value_probabilities
from crmpilot.llm.testing import OpenAITestServer, Reply, bad_request
from crmpilot.tasks import CLASSIFY_TICKET
from tests.handlerkit import envelope, only_result, openai_client
from ticket_classifier.handler import TicketClassifier
from ticket_classifier.settings import Settings

TOPIC = "crm.case.events"
SURE = {"category": 0.99, "priority": 0.99, "sentiment": 0.99, "language": 0.99}


def _answer() -> dict[str, object]:
    return {
        "category": "Billing",
        "queue": "billing",
        "priority": "High",
        "sentiment": "negative",
        "language": "en",
        "escalation_reason": None,
        "escalate": False,
        "confidence": SURE,  # the model's own report: sure of everything
        "rationale": "invoice charged twice",
    }


def _classify(server: OpenAITestServer) -> TicketClassification:
    handler = TicketClassifier(
        llm=openai_client(server),
        spec=CLASSIFY_TICKET,
        output_topic="ai.ticket.classified",
        thresholds=Settings().thresholds(),
    )
    event = CaseEvent(
        case_id="500DM0000000001YAA", subject="Invoice", description="I was charged twice for INV-1.", origin="Web"
    )
    result = only_result(handler, envelope("crm.case.created", event, subject=event.case_id), TOPIC)
    assert isinstance(result, TicketClassification)
    return result


def test_a_value_spelt_by_several_tokens_gets_the_product_of_their_probabilities() -> None:
    text = '{"category": "Account Access", "confidence": {"category": 0.97}, "escalate": true}'
    tokens = [
        ('{"', -0.0), ("category", -0.0), ('":', -0.0), (' "', -0.0), ("Account", math.log(0.6)),
        (" Access", math.log(0.5)), ('",', -0.0), (' "confidence": {"category": 0.97}, "escalate": ', -0.0),
        ("true", math.log(0.8)), ("}", -0.0),
    ]  # fmt: skip
    probs = value_probabilities(text, tokens, ["category", "escalate", "missing"])
    assert probs == pytest.approx({"category": 0.3, "escalate": 0.8})  # the nested "category" key is not the field


def test_tokens_around_the_content_count_from_where_it_starts() -> None:
    """llama.cpp strips the ```json fence the model wrote from the content, not from the tokens."""
    tokens = [("```", -0.0), ("json", -0.0), ("\n", -0.0), ('{"', -0.0), ("category", -0.0), ('": "', -0.0),
              ("Refund", math.log(0.4)), ('"}', -0.0), ("\n```", -0.0)]  # fmt: skip
    assert value_probabilities('{"category": "Refund"}', tokens, ["category"]) == pytest.approx({"category": 0.4})


def test_tokens_that_do_not_spell_the_answer_measure_nothing() -> None:
    assert value_probabilities('{"category": "Billing"}', [('{"category": "Refund"}', -0.1)], ["category"]) == {}
    assert value_probabilities("```json\n{}\n```", [("```json\n{}\n```", -0.1)], ["category"]) == {}


def test_a_confident_self_report_with_an_unsure_token_distribution_is_not_auto_applied() -> None:
    with OpenAITestServer(lambda req: Reply(_answer(), token_probs={"Billing": 0.35, "High": 0.97})) as server:
        result = _classify(server)
        assert server.requests[0].body["logprobs"] is True
    assert result.confidence["category"] == pytest.approx(0.35, abs=1e-4)
    assert result.confidence["priority"] == pytest.approx(0.97, abs=1e-3)
    assert result.confidence["language"] == 0.99  # a free-form code: no value list to measure, the report stays
    assert result.provenance.confidence_source == "logprobs"
    assert result.review != "auto_apply"


def test_without_logprobs_from_the_endpoint_the_self_report_stands_and_says_so() -> None:
    with OpenAITestServer(lambda req: Reply(_answer())) as server:
        server.enqueue(bad_request("logprobs are not supported with this model", param="logprobs"))
        result = _classify(server)
        assert [r.body.get("logprobs") for r in server.requests] == [True, None]  # asked once, then not again
    assert result.confidence["category"] == 0.99
    assert result.provenance.confidence_source == "self_report"
    assert result.review == "auto_apply"
