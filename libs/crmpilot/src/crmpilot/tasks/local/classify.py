"""``classify_ticket`` on the local model: a category head plus rules over cues.

The category comes from the head (zero-shot or trained) on the ticket's
embedding (a hybrid trained head also reads the ticket's words); sentiment from anchors and cues; language from script
and stopwords; priority and escalation from explicit signals (outage, legal threat,
urgency, anger, VIP), each named in the rationale with the words that fired it.

A ticket the head's gate finds out of scope (:func:`~crmpilot.llm.local.heads.scope_of`:
far from every closed case a trained head learned from, or from every category
description zero-shot) keeps the head's best category but with category
confidence 0, and its rationale begins with why (``Out of scope: nearest
training example 0.812 < bound 0.861``). The service decides the review from
that confidence against its thresholds, so the category is never applied nor
suggested (``skip``) whatever the thresholds (unless a suggest threshold is 0),
with no change to the result event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import numpy as np

from crmpilot.llm.local import cues
from crmpilot.llm.local.embedder import EmbeddingBatcher
from crmpilot.llm.local.heads import TicketClassifierHead, head_proba, scope_of
from crmpilot.llm.local.language import detect_language
from crmpilot.tasks.classify_ticket import EscalationReason, TicketClassificationOutput
from crmpilot.tasks.local.sentiment import (
    SENTIMENT_ANCHORS,
    SentimentReading,
    read_sentiment,
)
from crmpilot.tasks.taxonomy import Priority

__all__ = ["classify_ticket", "ticket_text"]

_HIGH_CATEGORIES = frozenset({"Security & Fraud"})
_LOW_CATEGORIES = frozenset({"Product Question", "Other"})


def ticket_text(payload: Mapping[str, Any]) -> str:
    """What the model embeds: subject and description."""
    return f"{payload.get('subject') or ''}\n{payload.get('description') or ''}".strip()


async def classify_ticket(
    payload: Mapping[str, Any],
    *,
    output_model: type[TicketClassificationOutput],
    head: TicketClassifierHead,
    batcher: EmbeddingBatcher,
) -> tuple[TicketClassificationOutput, int]:
    """The classification of one ticket and the tokens the model read."""
    text = ticket_text(payload)
    vectors, anchor_vectors, tokens = await asyncio.gather(
        batcher.query([text]),
        batcher.anchors(SENTIMENT_ANCHORS.texts, is_query=True),
        batcher.token_count(text),
    )
    probs = head_proba(head, vectors, [text])[0]
    top = np.argsort(-probs)[:3]
    category = head.labels[int(top[0])]
    scope = scope_of(head, vectors)
    outside = scope is not None and bool(scope.outside[0])
    sentiment = read_sentiment(text, SENTIMENT_ANCHORS.scores(vectors, anchor_vectors)[0])
    language, language_confidence = detect_language(text)
    # an out-of-scope category is not trusted: it does not raise or lower the priority either
    is_vip = bool(payload.get("is_vip"))
    priority, priority_confidence, priority_why = _priority(text, "" if outside else category, sentiment, is_vip)
    reason = _escalation(text, sentiment, priority, bool(payload.get("is_vip")))
    ranked = ", ".join(f"{head.labels[int(i)]} {probs[int(i)]:.2f}" for i in top)
    rationale = (
        (f"{scope.note(0)} ({head.id}): category not applied. " if scope is not None and outside else "")
        + f"Top categories ({head.id}): {ranked}. Priority {priority}: {priority_why}. "
        f"Sentiment {sentiment.label}{_quoted(sentiment.hits)}. Language {language}."
    )
    output = output_model.model_validate(
        {
            "category": category,
            "priority": priority,
            "sentiment": sentiment.label,
            "language": language,
            "escalation_reason": reason,
            "confidence": {
                "category": 0.0 if outside else round(float(probs[top[0]]), 3),
                "priority": priority_confidence,
                "sentiment": sentiment.confidence,
                "language": language_confidence,
            },
            "rationale": rationale[:1000],
        }
    )
    return output, tokens


def _quoted(hits: tuple[cues.Hit, ...] | list[cues.Hit]) -> str:
    words = list(dict.fromkeys(h.text for h in hits))[:3]
    return f" (cues: {', '.join(repr(w) for w in words)})" if words else ""


def _priority(text: str, category: str, sentiment: SentimentReading, is_vip: bool) -> tuple[Priority, float, str]:
    """Priority, its confidence, and why."""
    priority: Priority
    if hits := cues.find("legal", text) + cues.find("outage", text):
        priority, confidence, why = "Urgent", 0.9, f"outage or legal threat{_quoted(hits)}"
    elif hits := cues.find("urgent", text) + [h for h in sentiment.hits if h.kind == "anger"]:
        priority, confidence, why = "High", 0.8, f"urgency or anger{_quoted(hits)}"
    elif category in _HIGH_CATEGORIES:
        priority, confidence, why = "High", 0.7, f"category {category}"
    elif category in _LOW_CATEGORIES and sentiment.label != "negative":
        priority, confidence, why = "Low", 0.6, "a question without impact"
    else:
        priority, confidence, why = "Medium", 0.6, "no urgency signal"
    if is_vip and priority in ("Low", "Medium"):
        priority = "High" if priority == "Medium" else "Medium"
        why += "; raised one level for a VIP customer"
    return priority, confidence, why


def _escalation(text: str, sentiment: SentimentReading, priority: Priority, is_vip: bool) -> EscalationReason | None:
    if cues.has("legal", text):
        return "legal_threat"
    if cues.has("outage", text):
        return "outage"
    if sentiment.label == "negative" and any(h.kind == "anger" for h in sentiment.hits):
        return "angry_customer"
    if is_vip and priority in ("High", "Urgent"):
        return "vip"
    return None
