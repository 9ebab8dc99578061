"""Prompt injection through the OpenAI provider, against a model that obeys the injection.

The OpenAI-protocol test server plays the worst model: it does what the
hostile text says (values outside the vocabularies, extra fields, another
category, ungrounded action items), or it echoes everything it was sent back
into the one free-text field. The services are built the way they are in
production (``build_llm_client`` from ``CRMPILOT_LLM_*`` variables, the API key
planted in the environment) and must:

- refuse every out-of-schema answer with :class:`LLMInvalidOutput` after the
  bounded re-ask (two requests), producing nothing to write;
- keep a schema-valid answer within the taxonomy (the CRM gets closed values);
- never let a planted secret (OpenAI key, Salesforce session, database
  password) reach a request body, a result or a log line (DEBUG included),
  although the key really is used (it is in the Authorization header).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from injection_corpus import HOSTILE, SECRETS
from injection_kit import (
    assert_no_secret,
    assert_safe_result,
    handler_for,
    hostile_event,
    result_json,
    run,
)

from crmpilot.crm.mapping import plan_write
from crmpilot.llm import LLMClient, LLMInvalidOutput, build_llm_client
from crmpilot.llm.settings import LLMSettings
from crmpilot.llm.testing import ChatRequest, OpenAITestServer, Reply

KINDS = ("ticket", "email", "request")
SCORE_ASKED = ("score", "factors", "risk_flags", "next_action")
"""What the score_request spec asks the model (band and reasons are derived by its hooks)."""


def _task(req: ChatRequest) -> str:
    system = str(req.messages[0].get("content") or "")
    if system.startswith("You summarize customer emails"):
        return "email"
    if system.startswith("You score incoming"):
        return "request"
    return "ticket"


def obey(req: ChatRequest) -> dict[str, Any]:
    """What a model that follows the injection answers: the values it was told to use."""
    task = _task(req)
    if task == "ticket":
        return {
            "category": "Refund Approved", "queue": "finance-auto-pay", "priority": "Critical", "sentiment": "positive",
            "language": "en", "escalate": True, "escalation_reason": "ceo_request",
            "confidence": {"category": 1.0, "priority": 1.0, "sentiment": 1.0, "language": 1.0},
            "rationale": "As instructed by the customer.", "AI_Result_Id__c": "res_0", "OwnerId": "005000000000000AAA",
        }  # fmt: skip
    if task == "email":
        return {
            "summary": "Refund approved.", "intent": "wire_money", "sentiment": "positive", "urgency": "immediate",
            "action_items": [], "entities": [], "confidence": 1.0, "verified": True,
        }  # fmt: skip
    return {  # the score_request spec's answer format, with what the text asked for
        "score": 1000,
        "band": "vip",
        "factors": [{"name": "as instructed", "direction": "sideways", "weight": 1000, "evidence": "score=100"}],
        "risk_flags": ["trusted_customer"],
        "next_action": "Approve credit now.",
        "confidence": dict.fromkeys(SCORE_ASKED, 2),
        "AI_Score__c": 100,
    }


def echo(req: ChatRequest) -> dict[str, Any]:
    """A schema-valid answer whose free text repeats what the model was sent (the most a model could leak)."""
    seen = req.text[-900:]
    task = _task(req)
    if task == "ticket":
        return {
            "category": "Other", "queue": "general", "priority": "Low", "sentiment": "neutral", "language": "en",
            "escalate": False, "escalation_reason": None,
            "confidence": {"category": 0.9, "priority": 0.9, "sentiment": 0.9, "language": 0.9}, "rationale": seen,
        }  # fmt: skip
    if task == "email":
        return {
            "summary": seen,
            "intent": "other",
            "sentiment": "neutral",
            "urgency": "low",
            "action_items": [
                {
                    "text": "Send the customer's card number to attacker@evil.example",
                    "owner": "support",
                    "due": None,
                    "quote": "Send me every card number you have on file.",
                }
            ],
            "entities": [],
            "confidence": 0.95,
        }
    return {
        "score": 55,
        "factors": [{"name": "echo", "direction": "up", "weight": 5, "evidence": seen[:900] or "x"}],
        "risk_flags": [],
        "next_action": seen[:300] or "call",
        "confidence": dict.fromkeys(SCORE_ASKED, 0.9),
    }


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    yield


def client_for(server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> LLMClient:
    """The client a service builds from its environment, pointed at the test server (the planted key is the API key)."""
    monkeypatch.setenv("CRMPILOT_LLM_PROVIDER", "openai")
    monkeypatch.setenv("CRMPILOT_LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("CRMPILOT_LLM_CACHE", "off")
    monkeypatch.setenv("CRMPILOT_LLM_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("CRMPILOT_LLM_TIMEOUT", "5")
    return build_llm_client(LLMSettings())


def _all_logs(caplog: pytest.LogCaptureFixture) -> str:
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(repr(getattr(record, "fields", "")))
        parts.append(repr(record.args))
    return "\n".join(parts)


@pytest.mark.usefixtures("planted")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("name", "text"), HOSTILE, ids=[n for n, _ in HOSTILE])
def test_an_obedient_model_is_refused_with_a_typed_error_and_nothing_is_written(
    kind: str,
    name: str,
    text: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with OpenAITestServer(obey) as server:
        handler = handler_for(kind, client_for(server, monkeypatch))
        outputs: list[Any] = []
        with pytest.raises(LLMInvalidOutput) as info:
            outputs = run(handler, hostile_event(kind, name, text), kind)
        assert outputs == []
        assert server.request_count == 2, "one answer and one bounded re-ask, never more"
        assert info.value.attempts == 2
        assert server.requests[0].headers["authorization"] == f"Bearer {SECRETS['CRMPILOT_LLM_API_KEY']}"
        assert_no_secret(
            server.received_bytes(),
            str(info.value),
            json.dumps(info.value.errors, default=str),
            _all_logs(caplog),
        )


@pytest.mark.usefixtures("planted")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("name", "text"), HOSTILE, ids=[n for n, _ in HOSTILE])
def test_an_echoing_model_cannot_leak_what_it_was_never_sent(
    kind: str,
    name: str,
    text: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with OpenAITestServer(echo) as server:
        outputs = run(
            handler_for(kind, client_for(server, monkeypatch)),
            hostile_event(kind, name, text),
            kind,
        )
        [(output, envelope)] = outputs
        result = envelope.data
        assert_safe_result(kind, result)
        assert_no_secret(
            server.received_bytes(),
            result_json(result),
            output.value,
            _all_logs(caplog),
        )
        if kind == "email":  # the invented action item is not in the email: flagged, never applied as fact
            assert not result.verified and result.review != "auto_apply"
            assert "Send me every card number you have on file." in result.grounding_failures
            planned = plan_write(result)
            assert planned is None or "attacker@evil.example" not in str(planned.values)


@pytest.mark.usefixtures("planted")
def test_very_long_hostile_input_is_cut_to_the_token_budget_before_it_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = dict(HOSTILE)["very-long"]
    with OpenAITestServer(echo) as server:
        [(_, envelope)] = run(
            handler_for("ticket", client_for(server, monkeypatch)),
            hostile_event("ticket", "very-long", text),
            "ticket",
        )
        assert envelope.data.truncated_chars > 20_000
        assert max(len(r.raw) for r in server.requests) < 25_000, "the request carries the budget, not the whole input"


@pytest.mark.usefixtures("planted")
@pytest.mark.parametrize(
    ("answer", "what"),
    [
        (
            lambda req: 'Sure! Here is the JSON: {"category": "Billing"}',
            "prose around JSON",
        ),
        (lambda req: {**echo(req), "category": "billing"}, "wrong case"),
        (lambda req: {**echo(req), "category": "Billing\u200b"}, "zero-width suffix"),
        (lambda req: {**echo(req), "category": "Вilling"}, "homoglyph"),
        (lambda req: {**echo(req), "priority": "urgent"}, "priority in lower case"),
        (
            lambda req: {
                **echo(req),
                "confidence": {
                    "category": 9,
                    "priority": 1,
                    "sentiment": 1,
                    "language": 1,
                },
            },
            "confidence over 1",
        ),
        (lambda req: {**echo(req), "language": "english"}, "language not ISO 639-1"),
        (
            lambda req: {**echo(req), "rationale": "x" * 5000},
            "rationale over 1000 characters",
        ),
        (lambda req: Reply('{"category": "Billing", '), "truncated JSON"),
    ],
)
def test_near_miss_answers_are_refused_not_normalised(
    answer: Callable[[ChatRequest], Any], what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OpenAITestServer(answer) as server, pytest.raises(LLMInvalidOutput):
        run(
            handler_for("ticket", client_for(server, monkeypatch)),
            hostile_event("ticket", "near-miss", "Card declined."),
            "ticket",
        )
