"""``summarize_email`` on the local model: extractive, so every quote is verbatim.

Quoted replies and signatures are cut first; the summary is the most central
sentences (similar to the other sentences and to the whole message) in their
original order within the word budget; action items are the sentences with a
request or commitment cue; dates, amounts and order numbers are lifted by
pattern; intent comes from anchors plus cues, sentiment from
:mod:`~crmpilot.tasks.local.sentiment`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any, cast

import numpy as np

from crmpilot.llm.local import cues
from crmpilot.llm.local.anchors import AnchorSet, softmax
from crmpilot.llm.local.embedder import EmbeddingBatcher
from crmpilot.llm.local.mail import new_text_regions
from crmpilot.llm.local.text import Span, normalize, sentence_containing, sentences
from crmpilot.tasks.local.sentiment import SENTIMENT_ANCHORS, read_sentiment
from crmpilot.tasks.summarize_email import DEFAULT_MAX_WORDS, EmailSummaryOutput, Intent, Urgency

__all__ = ["INTENT_ANCHORS", "MAX_SUMMARY_SENTENCES", "summarize_email"]

INTENT_ANCHORS = AnchorSet.of(
    {
        "complaint": (
            "I want to complain about the poor service I received",
            "I am unhappy with how my issue was handled",
            "Хочу пожаловаться на качество обслуживания",
        ),
        "question": (
            "I have a question: how does this work?",
            "Could you tell me what the opening hours are?",
            "Подскажите, пожалуйста, как это работает?",
        ),
        "request": (
            "Please send me a copy of the contract",
            "Could you update the delivery address on my order?",
            "Прошу прислать документы по заказу",
        ),
        "cancellation": (
            "I want to cancel my subscription and close my account",
            "Please cancel my order",
            "Прошу отменить заказ и расторгнуть договор",
        ),
        "payment": (
            "I have a question about my invoice and the payment",
            "The payment failed and I was charged twice",
            "Оплата по счёту не прошла",
        ),
        "feedback": (
            "Just wanted to share some feedback about your product",
            "Thank you, your team did a great job",
            "Хочу оставить отзыв о вашем сервисе",
        ),
        "other": (
            "I am out of the office and will reply when I return",
            "Newsletter: our latest news and announcements",
            "Я в отпуске и отвечу после возвращения",
        ),
    }
)
MAX_SUMMARY_SENTENCES = 60
"""Summary sentences are chosen among the first 60 of the message (each one is embedded)."""
_INTENT_TEMPERATURE = 0.02
_INTENT_CUES: dict[cues.CueKind, tuple[Intent, float]] = {
    "cancel": ("cancellation", 0.6),
    "payment": ("payment", 0.6),
    "anger": ("complaint", 0.8),
    "question": ("question", 0.3),
    "request": ("request", 0.3),
}
_GREETING = re.compile(
    r"^(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|здравствуйте|добрый (?:день|вечер)|доброе утро"
    r"|привет|уважаем\w*|hallo|bonjour|hola)\b.{0,40}$",
    re.IGNORECASE,
)
_NOT_AN_ACTION = re.compile(
    r"please (?:find|see) (?:attached|below|enclosed)|feel free|(?:don't|do not) hesitate|thank(?:s| you) in advance"
    r"|if you have any (?:other |further )?questions|во вложении|заранее спасибо",
    re.IGNORECASE,
)
_SOON = re.compile(
    r"\b(?:asap|today|tonight|tomorrow|eod|end of (?:the )?day)\b|сегодня|завтра|конца дня", re.IGNORECASE
)
_ENTITY_PATTERNS: dict[str, re.Pattern[str]] = {
    "date": re.compile(
        r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}[./]\d{1,2}[./]\d{2,4}\b"
        r"|\b\d{1,2}(?:st|nd|rd|th)? (?:of )?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?(?: \d{4})?\b"
        r"|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2}(?:st|nd|rd|th)?(?:,? \d{4})?\b"
        r"|\b\d{1,2} (?:январ|феврал|марта|апрел|ма|июн|июл|августа|сентябр|октябр|ноябр|декабр)[яе]?(?: \d{4})?",
        re.IGNORECASE,
    ),
    "amount": re.compile(
        r"[$€£₽¥]\s?\d{1,3}(?:[ ,.]?\d{3})*(?:[.,]\d{1,2})?"
        r"|\b\d{1,3}(?:[ ,.]?\d{3})*(?:[.,]\d{1,2})?\s?(?:USD|EUR|GBP|RUB|CHF|руб(?:\.|лей|ля|ль)?|₽|€|\$"
        r"|dollars?|euros?|долларов|доллара|евро)(?!\w)",
        re.IGNORECASE,
    ),
    "order_number": re.compile(
        r"\b(?:order|invoice|ticket|case|contract|reference|ref|заказ\w*|сч[её]т\w*|договор\w*|накладн\w*)"
        r"\s*(?:no\.?|number|nr\.?|id)?\s*[:#№]?\s*(?P<id>[A-Z]{0,5}-?\d[\w-]{2,})",
        re.IGNORECASE,
    ),
}


async def summarize_email(payload: Mapping[str, Any], *, batcher: EmbeddingBatcher) -> tuple[EmailSummaryOutput, int]:
    """The summary of one email and the tokens the model read."""
    body = str(payload.get("body") or "")
    subject = str(payload.get("subject") or "")
    max_words = int(payload.get("max_words") or DEFAULT_MAX_WORDS)
    spans = [s for a, b in new_text_regions(body) for s in sentences(body, a, b)]
    content = [s for s in spans if not _GREETING.match(s.clean)]
    text = normalize(" ".join([subject, *(s.text for s in content)]))
    candidates = content[:MAX_SUMMARY_SENTENCES]
    sentence_vectors, vectors, intent_vectors, sentiment_vectors, tokens = await asyncio.gather(
        batcher.passage([s.clean for s in candidates]),
        batcher.query([text]),
        batcher.anchors(INTENT_ANCHORS.texts, is_query=True),
        batcher.anchors(SENTIMENT_ANCHORS.texts, is_query=True),
        batcher.token_count(text),
    )
    intent, intent_confidence = _intent(text, INTENT_ANCHORS.scores(vectors, intent_vectors)[0])
    sentiment = read_sentiment(text, SENTIMENT_ANCHORS.scores(vectors, sentiment_vectors)[0])
    actions = _action_items(content)
    output = EmailSummaryOutput.model_validate(
        {
            "summary": _summary(candidates, sentence_vectors, vectors[0], max_words) or normalize(subject)[:2000],
            "intent": intent,
            "sentiment": sentiment.label,
            "urgency": _urgency(text, intent, sentiment.label, actions),
            "action_items": actions,
            "entities": _entities(body, spans),
            "confidence": intent_confidence,
        }
    )
    return output, tokens


def _summary(content: list[Span], vectors: np.ndarray, document: np.ndarray, max_words: int) -> str:
    if not content:
        return ""
    centrality = (vectors @ vectors.T).mean(axis=1) if len(content) > 1 else np.ones(1)
    score = centrality + vectors @ document
    chosen: list[int] = []
    used = 0
    for i in np.argsort(-score):
        length = len(content[int(i)].clean.split())
        if used + length <= max_words:
            chosen.append(int(i))
            used += length
    if not chosen:
        words = content[int(np.argmax(score))].clean.split()
        return " ".join(words[:max_words]) + " …"
    return " ".join(content[i].clean for i in sorted(chosen))


def _intent(text: str, scores: np.ndarray) -> tuple[Intent, float]:
    logits = np.asarray(scores, dtype=np.float64) / _INTENT_TEMPERATURE
    for kind, (intent, weight) in _INTENT_CUES.items():
        if cues.has(kind, text):
            logits[INTENT_ANCHORS.labels.index(intent)] += weight
    probs = softmax(logits.astype(np.float32), 1.0)[0]
    best = int(probs.argmax())
    return cast(Intent, INTENT_ANCHORS.labels[best]), round(float(probs[best]), 3)


def _action_items(content: list[Span]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for span in content:
        if _NOT_AN_ACTION.search(span.text):
            continue
        asks, commits = cues.has("request", span.text), cues.has("commitment", span.text)
        deadline = cues.first("deadline", span.text) or cues.first("urgent", span.text)
        if not (asks or commits or (deadline and "?" not in span.text)):
            continue
        owner = "support" if asks else "customer" if commits else None
        items.append(
            {"text": span.clean[:500], "owner": owner, "due": deadline.text if deadline else None, "quote": span.text}
        )
    return items[:20]


def _entities(body: str, spans: list[Span]) -> list[dict[str, str]]:
    found: dict[tuple[str, str], dict[str, str]] = {}
    for kind, pattern in _ENTITY_PATTERNS.items():
        for m in pattern.finditer(body):
            value = m.group("id") if kind == "order_number" else m.group().strip()
            start = m.start("id") if kind == "order_number" else m.start()
            span = sentence_containing(spans, start)
            if span is not None and (kind, value) not in found:
                found[(kind, value)] = {"kind": kind, "value": value, "quote": span.text}
    return list(found.values())[:50]


def _urgency(text: str, intent: Intent, sentiment: str, actions: list[dict[str, Any]]) -> Urgency:
    if any(cues.has(kind, text) for kind in ("urgent", "outage", "legal")):
        return "high"
    if any(item["due"] and _SOON.search(item["due"]) for item in actions):
        return "high"
    if intent == "feedback" or (sentiment == "positive" and not actions):
        return "low"
    return "normal"
