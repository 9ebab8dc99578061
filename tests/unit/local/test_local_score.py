"""The built-in score_request spec's local method on the real local model: points with evidence that exists in the
input, as the enricher reads it."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from crmpilot.enrichments import EnrichmentHandler, load_registry, task_for
from crmpilot.events import Envelope
from crmpilot.events.models import RequestSubmitted
from crmpilot.llm import LLMClient
from crmpilot.llm.local import LocalProvider
from crmpilot.tasks.scoring import field_evidence

SPEC = load_registry([], builtin=True).get("score_request")


def score(provider: LocalProvider, event: RequestSubmitted) -> Any:
    handler = EnrichmentHandler(spec=SPEC, llm=LLMClient(provider), token_model="local")
    reading = handler.read(
        Envelope[Any](source="t", type="erp.request.submitted", schemaversion=1, subject="r", data=event)
    )
    assert reading is not None
    payload = reading.payload
    out: Any = asyncio.run(provider.complete(task_for(SPEC), payload)).output
    fields = {field_evidence(k, v) for k, v in payload.items() if k != "description"}
    for factor in out.factors:
        assert factor.evidence in payload["description"] or factor.evidence in fields, factor
    assert len(set(out.confidence.model_dump().values())) == 1, "one confidence: how well the information supports it"
    return out


def test_qualified_b2b_quote_is_hot_with_its_reasons(provider: LocalProvider) -> None:
    out = score(
        provider,
        RequestSubmitted(
            request_id="r1",
            kind="quote",
            company="Acme GmbH",
            contact_email="cto@acme.de",
            country="DE",
            employees=450,
            amount=Decimal("60000"),
            currency="EUR",
            description="I am the CTO of Acme. We have an approved budget of 60k EUR and need to go live this "
            "quarter. Please send a quote for 200 seats.",
        ),
    )
    assert out.score >= 70 and out.risk_flags == ()
    names = {f.name for f in out.factors if f.direction == "up"}
    assert {"budget stated", "timeline stated", "decision maker involved", "business email domain"} <= names
    assert "quote" in out.next_action.lower()


def test_student_on_free_mail_is_cold_and_flagged(provider: LocalProvider) -> None:
    out = score(
        provider,
        RequestSubmitted(
            request_id="r2",
            kind="lead",
            contact_email="kid@gmail.com",
            description="Hi, I am a student writing my thesis, just curious about your pricing.",
        ),
    )
    assert out.score < 40
    assert {"spam_or_test", "free_mail_domain", "incomplete"} <= set(out.risk_flags)
    assert any(f.direction == "down" and "student" in f.evidence for f in out.factors)
    assert out.next_action.startswith("Discard")


def test_russian_request_signals(provider: LocalProvider) -> None:
    out = score(
        provider,
        RequestSubmitted(
            request_id="r3",
            kind="purchase",
            company="ООО Ромашка",
            contact_email="zakupki@romashka.ru",
            employees=120,
            amount=Decimal("1500000"),
            currency="RUB",
            description="Я руководитель отдела закупок. Бюджет согласован, закупка нужна до конца квартала.",
        ),
    )
    names = {f.name for f in out.factors}
    assert {"budget stated", "timeline stated", "decision maker involved"} <= names
    assert out.score >= 70
