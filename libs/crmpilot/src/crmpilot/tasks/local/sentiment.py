"""Sentiment of a customer text: similarity to anchor phrasings plus lexical cues.

The embedding part catches tone in any language the model knows; the cues
(anger, complaint and thanks words in English and Russian) sharpen it where a
word settles the matter ("unacceptable", "безобразие").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from crmpilot.llm.local import cues
from crmpilot.llm.local.anchors import AnchorSet, softmax
from crmpilot.tasks.taxonomy import Sentiment

__all__ = ["SENTIMENT_ANCHORS", "SentimentReading", "read_sentiment"]

SENTIMENT_ANCHORS = AnchorSet.of(
    {
        "negative": (
            "I am very unhappy and frustrated, this is terrible service",
            "This is unacceptable, nothing works and nobody helps me",
            "Я очень недоволен, это ужасное обслуживание",
            "Безобразие, проблема снова не решена",
        ),
        "neutral": (
            "I have a question about my account",
            "Please update the delivery address on my order",
            "Подскажите, пожалуйста, как изменить тариф",
            "Прошу прислать копию счёта",
        ),
        "positive": (
            "Thank you so much, great service, I am very happy",
            "I love the product, your support was excellent",
            "Спасибо большое, всё отлично, мы очень довольны",
            "Благодарю за быструю помощь",
        ),
    }
)
_TEMPERATURE = 0.02
_CUE_WEIGHT: dict[cues.CueKind, tuple[Sentiment, float]] = {
    "anger": ("negative", 1.2),
    "negative": ("negative", 0.6),
    "positive": ("positive", 0.6),
}


@dataclass(frozen=True, slots=True)
class SentimentReading:
    label: Sentiment
    confidence: float
    hits: tuple[cues.Hit, ...]
    """The cues that counted, for the rationale."""


def read_sentiment(text: str, anchor_scores: npt.NDArray[np.float32]) -> SentimentReading:
    """Sentiment from ``SENTIMENT_ANCHORS.scores`` of the text (one row) and the text's cues."""
    logits = np.asarray(anchor_scores, dtype=np.float64).reshape(-1) / _TEMPERATURE
    hits: list[cues.Hit] = []
    for kind, (label, weight) in _CUE_WEIGHT.items():
        found = cues.find(kind, text)
        hits += found
        logits[SENTIMENT_ANCHORS.labels.index(label)] += weight * min(len(found), 3)
    probs = softmax(logits.astype(np.float32), 1.0)[0]
    best = int(probs.argmax())
    label = cast(Sentiment, SENTIMENT_ANCHORS.labels[best])
    return SentimentReading(label, round(float(probs[best]), 3), tuple(hits))
