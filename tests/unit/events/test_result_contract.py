"""The result contract: input limits (skip, cut) and the rules a result event cannot break."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from crmpilot.events import EmailSummary, EnrichmentResult, decode, encode
from crmpilot.events.envelope import Envelope
from crmpilot.events.models import InputSkipped, Provenance, cut_to_token_budget
from tests.scorekit import scored_event, scored_request

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def provenance() -> Provenance:
    return Provenance.without_model_call(
        prompt_id="summarize_email",
        prompt_version="v1",
        prompt_hash="0" * 16,
        input_hash="0" * 32,
        trace_id=None,
        source_topic="crm.email.events",
        source_partition=0,
        source_offset=3,
        source_event_id="evt-1",
        event_time=NOW,
        processed_at=NOW,
    )


def summary(**fields: Any) -> EmailSummary:
    base: dict[str, Any] = {
        "result_id": "res_1",
        "review": "auto_apply",
        "provenance": provenance(),
        "email_id": "02s1",
        "summary": "Asks for a refund.",
        "intent": "payment",
        "sentiment": "neutral",
        "urgency": "normal",
        "verified": True,
    }
    return EmailSummary(**{**base, **fields})


@pytest.mark.parametrize(
    "text",
    [
        "Charged twice, please refund.",
        "Прошу вернуть деньги за заказ № 58123.",
        "Order 4417 — see https://shop.example/orders/4417?ref=mail&utm_source=newsletter",
        "Hi\n\n\tthanks",
        "I was billed twice this month and would like the duplicate charge refunded to my card as soon as possible "
        * 5,
        "您好，我上个月的发票被重复扣款了两次，请尽快退还多扣的金额，订单号是二零二四零五零六，谢谢您的帮助和耐心处理这个问题。"
        * 2,
        "ご注文いただいた商品がまだ届いておりません。配送状況を確認していただけますでしょうか。よろしくお願いいたします。"
        * 2,
    ],
)
def test_readable_text_in_any_script_is_not_skipped(text: str) -> None:
    assert InputSkipped.for_text(text, what="email") is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty_input"),
        (" \n\t ", "empty_input"),
        ("42 / 17 -- 2026", "non_text_input"),
        ("ok" + "\x00" * 10, "non_text_input"),
        ("\ufffd\ufffd\ufffd bad bytes \ufffd\ufffd\ufffd", "non_text_input"),
        ("see attachment " + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo" * 8, "non_text_input"),
        (
            "\n".join(["TG9yZW0gaXBzdW0gZG9sb3Igc2l0IGFtZXQsIGNvbnNlY3RldHVyIGFkaXBpc2NpbmcgZWxpdC4gU2Vk"] * 20),
            "non_text_input",
        ),
    ],
)
def test_empty_and_non_text_input_is_named(text: str, reason: str) -> None:
    skipped = InputSkipped.for_text(text, what="email")
    assert skipped is not None and skipped.reason == reason and skipped.detail.startswith("the email ")


def test_the_cut_keeps_a_prefix_within_the_budget_at_a_word_boundary() -> None:
    def count(text: str) -> int:
        return len(text.split())

    text = " ".join(f"word{i}" for i in range(100))
    kept, cut = cut_to_token_budget(text, 10, count)
    assert kept == " ".join(f"word{i}" for i in range(10)) and cut == len(text) - len(kept)
    assert cut_to_token_budget("short text", 10, count) == ("short text", 0)
    with pytest.raises(ValueError, match="positive"):
        cut_to_token_budget(text, 0, count)


def test_a_skipped_result_is_never_applied_and_round_trips() -> None:
    skipped = InputSkipped(reason="empty_input", detail="the email is empty")
    with pytest.raises(ValidationError, match="review 'skip'"):
        summary(skipped=skipped, review="suggest")
    result = summary(skipped=skipped, review="skip")
    envelope = Envelope[EmailSummary](
        source="t", type="ai.email.summarized", schemaversion=1, subject="02s1", data=result
    )
    assert decode(encode(envelope)).data == result
    assert result.provenance.attempts == 0 and result.provenance.cost_usd == 0


def test_verified_means_no_grounding_failures_and_unverified_is_never_applied() -> None:
    with pytest.raises(ValidationError, match="exactly when"):
        summary(verified=True, grounding_failures=("made up",))
    with pytest.raises(ValidationError, match="exactly when"):
        summary(verified=False)
    with pytest.raises(ValidationError, match="cannot be auto-applied"):
        summary(verified=False, grounding_failures=("made up",))
    assert summary(verified=False, grounding_failures=("made up",), review="suggest").grounding_failures == ("made up",)


def test_a_request_score_carries_its_outputs_risk_flags_and_confidence_per_field() -> None:
    score = scored_request(
        provenance(), request_id="00Q1", score=55, risk_flags=("free_mail_domain",), next_action="call", confidence=0.7
    )
    envelope = scored_event(score)
    dumped = envelope.data.model_dump(mode="json")
    assert (dumped["task"], dumped["record_id"], dumped["outputs"]["score"]) == ("score_request", "00Q1", 55)
    assert dumped["outputs"]["risk_flags"] == ["free_mail_domain"]
    assert (dumped["outputs"]["band"], dumped["outputs"]["reasons"]) == (
        "warm",
        "+ budget stated; risk: free_mail_domain",
    )
    assert dumped["confidence"]["score"] == 0.7
    decoded = decode(encode(envelope))
    assert decoded.type == "ai.enrichment.completed" and decoded.data == score
    with pytest.raises(ValidationError):  # a confidence is a share: never above 1
        EnrichmentResult(**{**score.model_dump(), "confidence": {**score.confidence, "score": 1.5}})
    with pytest.raises(ValidationError, match="not outputs of this result"):
        EnrichmentResult(**{**score.model_dump(), "confidence": {**score.confidence, "priority": 0.9}})
