"""``score_request`` on the local model: points from fields and text, each with evidence.

The score starts at a base and every factor adds or removes points: the kind of
request, the amount (face value; no currency conversion), the company size,
the email domain (business, free or disposable), missing information, cues in
the description (budget, timeline, decision maker, urgency; student, test,
spam, no budget) and the model's reading of buying intent. Each factor quotes
its evidence: a sentence of the description, or the field as the prompt shows it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import numpy as np

from crmpilot.llm.local import cues
from crmpilot.llm.local.anchors import AnchorSet, softmax
from crmpilot.llm.local.embedder import EmbeddingBatcher
from crmpilot.tasks.scoring import band_for, field_evidence
from crmpilot.text import Span, sentence_containing, sentences

__all__ = ["BUYING_ANCHORS", "score_request"]

RiskFlag = Literal["free_mail_domain", "disposable_email", "spam_or_test", "incomplete", "no_budget"]

BASE_SCORE = 30
BUYING_ANCHORS = AnchorSet.of(
    {
        "ready": (
            "We are ready to buy and need a quote for 50 licenses this month",
            "We have approved budget and want to sign the contract soon",
            "Готовы закупить оборудование, пришлите коммерческое предложение",
        ),
        "browsing": (
            "Just curious about what you offer, no plans yet",
            "I am a student researching companies for a school project",
            "Просто интересуюсь, покупать пока не планируем",
        ),
    }
)
_FREE_MAIL = frozenset(
    "gmail.com googlemail.com yahoo.com yahoo.co.uk hotmail.com outlook.com live.com msn.com aol.com icloud.com "
    "me.com mail.com gmx.com gmx.de gmx.net web.de proton.me protonmail.com yandex.ru yandex.com ya.ru mail.ru "
    "bk.ru list.ru inbox.ru rambler.ru qq.com 163.com 126.com".split()
)
_DISPOSABLE_MAIL = frozenset(
    "mailinator.com guerrillamail.com 10minutemail.com tempmail.com temp-mail.org yopmail.com trashmail.com "
    "sharklasers.com getnada.com dispostable.com throwawaymail.com".split()
)
_KIND_POINTS = {"purchase": 15, "quote": 10, "credit": 5}
_AMOUNT_POINTS = ((100_000, 20), (20_000, 15), (5_000, 10), (1_000, 5))
"""(at least, points): face value in the request's currency."""
_EMPLOYEE_POINTS = ((1000, 12), (200, 8), (50, 4))
_TEXT_FACTORS: tuple[tuple[cues.CueKind, str, int, RiskFlag | None], ...] = (
    ("budget", "budget stated", 10, None),
    ("timeline", "timeline stated", 8, None),
    ("decision_maker", "decision maker involved", 8, None),
    ("urgent", "urgency", 5, None),
    ("junk", "student, test or spam cues", -25, "spam_or_test"),
    ("low_intent", "no buying intent or budget", -10, "no_budget"),
)
_MAX_READ_SENTENCES = 40
"""The model reads the first 40 sentences of the description for buying intent."""
_MAX_FACTORS = 30
"""The spec's ``factors.max_items``: the strongest are kept."""
_COMPLETENESS_FIELDS = ("company", "email_domain", "country", "employees", "amount", "description")


def _factor(name: str, points: float, evidence: str) -> dict[str, Any]:
    return {"name": name, "direction": "up" if points >= 0 else "down", "weight": abs(points), "evidence": evidence}


def _amount(payload: Mapping[str, Any]) -> Decimal | None:
    try:
        return Decimal(str(payload["amount"])) if payload.get("amount") not in (None, "") else None
    except InvalidOperation:
        return None


def _employees(payload: Mapping[str, Any]) -> int | None:
    value = payload.get("employees")
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    return None


def _field_factors(payload: Mapping[str, Any]) -> tuple[list[dict[str, Any]], set[RiskFlag]]:
    factors: list[dict[str, Any]] = []
    risks: set[RiskFlag] = set()
    kind = str(payload.get("kind") or "lead")
    if points := _KIND_POINTS.get(kind):
        factors.append(_factor(f"{kind} request", points, field_evidence("kind", payload.get("kind"))))
    amount = _amount(payload)
    if amount is not None:
        points = next((p for limit, p in _AMOUNT_POINTS if amount >= limit), -5 if amount < 200 else 0)
        if points:
            factors.append(_factor("amount", points, field_evidence("amount", payload.get("amount"))))
    elif kind != "lead":
        factors.append(_factor("amount missing", -5, field_evidence("amount", payload.get("amount"))))
    employees = _employees(payload)
    if employees is not None:
        points = next((p for limit, p in _EMPLOYEE_POINTS if employees >= limit), -4 if employees < 10 else 0)
        if points:
            factors.append(_factor("company size", points, field_evidence("employees", payload.get("employees"))))
    domain = str(payload.get("email_domain") or "").lower()
    evidence = field_evidence("email_domain", payload.get("email_domain"))
    if not domain:
        factors.append(_factor("no contact email", -5, evidence))
    elif domain in _DISPOSABLE_MAIL:
        factors.append(_factor("disposable email domain", -20, evidence))
        risks.add("disposable_email")
    elif domain in _FREE_MAIL:
        factors.append(_factor("free email domain", -8, evidence))
        risks.add("free_mail_domain")
    else:
        factors.append(_factor("business email domain", 8, evidence))
    missing = [f for f in _COMPLETENESS_FIELDS if payload.get(f) in (None, "")]
    if len(missing) >= 3:
        factors.append(_factor("incomplete request", -8, field_evidence(missing[0], payload.get(missing[0]))))
        risks.add("incomplete")
    return factors, risks


def _text_factors(description: str, spans: list[Span]) -> tuple[list[dict[str, Any]], set[RiskFlag]]:
    factors: list[dict[str, Any]] = []
    risks: set[RiskFlag] = set()
    for kind, name, points, risk in _TEXT_FACTORS:
        hit = cues.first(kind, description)
        span = sentence_containing(spans, hit.start) if hit else None
        if span is not None:
            factors.append(_factor(name, points, span.text))
            if risk:
                risks.add(risk)
    return factors, risks


def _intent_factor(spans: list[Span], scores: np.ndarray) -> dict[str, Any] | None:
    """The model's reading: the sentence most clearly ready-to-buy (or just browsing) moves up to 8 points."""
    if not spans:
        return None
    ready = softmax(scores, 0.02)[:, BUYING_ANCHORS.labels.index("ready")]
    i = int(np.argmax(np.abs(ready - 0.5)))
    points = round((float(ready[i]) - 0.5) * 16)
    if abs(points) < 2:
        return None
    return _factor("buying intent (model)" if points > 0 else "low buying intent (model)", points, spans[i].text)


def _next_action(kind: str, score: int, risks: set[RiskFlag]) -> str:
    if "spam_or_test" in risks or "disposable_email" in risks:
        return "Discard: the request looks like spam or a test; do not contact."
    band = band_for(score)
    if band == "hot":
        return {
            "purchase": "Confirm the order and call within 24 hours; assign an account executive now.",
            "quote": "Send the quote today and call within 24 hours to walk through it.",
            "credit": "Forward to credit review today with the stated amount and company details.",
        }.get(kind, "Call within 24 hours and book a discovery meeting with the decision maker.")
    if band == "warm":
        if "incomplete" in risks:
            return "Ask for the missing company details, then qualify budget, timeline and decision maker."
        return "Follow up by email within 2 business days to qualify budget, timeline and decision maker."
    return "Add to the nurture campaign; no sales call yet."


async def score_request(payload: Mapping[str, Any], *, batcher: EmbeddingBatcher) -> tuple[dict[str, Any], int]:
    """The answer for one request (every field the spec asks, each with the same confidence) and the tokens the model
    read."""
    description = str(payload.get("description") or "")
    spans = sentences(description)
    read = spans[:_MAX_READ_SENTENCES]
    vectors, anchor_vectors, tokens = await asyncio.gather(
        batcher.query([s.clean for s in read]),
        batcher.anchors(BUYING_ANCHORS.texts, is_query=True),
        batcher.token_count(description),
    )
    factors, risks = _field_factors(payload)
    text_factors, text_risks = _text_factors(description, spans)
    factors += text_factors
    risks |= text_risks
    if intent := _intent_factor(read, BUYING_ANCHORS.scores(vectors, anchor_vectors)):
        factors.append(intent)
    total = BASE_SCORE + sum(f["weight"] if f["direction"] == "up" else -f["weight"] for f in factors)
    score = int(min(100, max(0, round(total))))
    filled = sum(payload.get(f) not in (None, "") for f in _COMPLETENESS_FIELDS)
    kind = str(payload.get("kind") or "lead")
    confidence = round(0.4 + 0.1 * filled, 3)
    output = {
        "score": score,
        "factors": sorted(factors, key=lambda f: -f["weight"])[:_MAX_FACTORS],
        "risk_flags": sorted(risks),
        "next_action": _next_action(kind, score, risks),
    }
    return {**output, "confidence": dict.fromkeys(output, confidence)}, tokens
