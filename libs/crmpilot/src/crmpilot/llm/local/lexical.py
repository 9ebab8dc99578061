"""TF-IDF features of a ticket's words and characters, computed here (numpy only) at inference.

A hybrid trained head (``crmpilot train --features hybrid``) reads these next
to the ticket's embedding: the e5 embedding knows paraphrases, the n-grams know
the exact words that separate neighbouring intents (``top up`` vs ``transfer``,
``pending`` vs ``declined``) that a 384-dimension, 4-bit embedding blurs.

One analyser, :func:`analyze`, turns a text into its terms: NFKC, lower case,
then word n-grams (``\\w+`` tokens, prefixed ``w:``) and character n-grams
inside each whitespace-separated word padded with spaces (prefixed ``c:``).
Training hands this same function to scikit-learn's ``TfidfVectorizer`` (which
chooses the vocabulary and fits the idf); the artefact stores the vocabulary and
the idf, and :class:`LexicalFeatures` recomputes the vector from them exactly
as scikit-learn does (``tf = 1 + ln(count)``, times idf, L2-normalised), so
inference needs neither scikit-learn nor any code from the artefact.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["LexicalConfig", "LexicalFeatures", "analyze"]

_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class LexicalConfig:
    """Which n-grams make the terms (``None``: that kind is off)."""

    word_ngrams: tuple[int, int] | None = (1, 2)
    char_ngrams: tuple[int, int] | None = (2, 5)

    def __post_init__(self) -> None:
        for name in ("word_ngrams", "char_ngrams"):
            span = getattr(self, name)
            if span is not None:
                lo, hi = (int(v) for v in span)
                if not 1 <= lo <= hi <= 10:
                    raise ValueError(f"{name} must be 1 <= min <= max <= 10, got {span!r}")
                object.__setattr__(self, name, (lo, hi))
        if self.word_ngrams is None and self.char_ngrams is None:
            raise ValueError("lexical features need word or character n-grams")

    def as_dict(self) -> dict[str, Any]:
        return {
            "analyzer": "crmpilot.lexical/1",
            "word_ngrams": list(self.word_ngrams) if self.word_ngrams else None,
            "char_ngrams": list(self.char_ngrams) if self.char_ngrams else None,
            "tf": "1+ln",
            "norm": "l2",
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> LexicalConfig:
        if doc.get("analyzer") != "crmpilot.lexical/1" or doc.get("tf") != "1+ln" or doc.get("norm") != "l2":
            raise ValueError(f"unknown lexical analyser {dict(doc)!r}")
        word, char = doc.get("word_ngrams"), doc.get("char_ngrams")
        return cls(tuple(word) if word else None, tuple(char) if char else None)


def analyze(text: str, config: LexicalConfig = LexicalConfig()) -> list[str]:
    """The terms of ``text``, with repeats (their counts are the term frequencies)."""
    text = unicodedata.normalize("NFKC", text).lower()
    terms: list[str] = []
    if config.word_ngrams:
        lo, hi = config.word_ngrams
        tokens = _WORD.findall(text)
        for n in range(lo, hi + 1):
            terms += ["w:" + " ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if config.char_ngrams:
        lo, hi = config.char_ngrams
        for word in text.split():
            padded = f" {word} "
            for n in range(lo, hi + 1):
                if len(padded) <= n:
                    terms.append("c:" + padded)
                    break
                terms += ["c:" + padded[i : i + n] for i in range(len(padded) - n + 1)]
    return terms


@dataclass(frozen=True, slots=True, eq=False)
class LexicalFeatures:
    """A fitted TF-IDF: the vocabulary (column order) and the idf of each term."""

    vocabulary: tuple[str, ...]
    idf: npt.NDArray[np.float32]
    config: LexicalConfig = LexicalConfig()
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        idf = np.ascontiguousarray(self.idf, dtype=np.float32).reshape(-1)
        if idf.shape[0] != len(self.vocabulary):
            raise ValueError(f"{len(self.vocabulary)} terms but {idf.shape[0]} idf values")
        if not np.all(np.isfinite(idf)) or np.any(idf <= 0):
            raise ValueError("idf values must be positive numbers")
        index = {term: i for i, term in enumerate(self.vocabulary)}
        if len(index) != len(self.vocabulary):
            raise ValueError("the vocabulary has repeated terms")
        object.__setattr__(self, "idf", idf)
        object.__setattr__(self, "_index", index)

    @property
    def size(self) -> int:
        return len(self.vocabulary)

    def sparse_rows(self, texts: Sequence[str]) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        """Per text, the columns of its known terms and their L2-normalised tf-idf values."""
        rows = []
        for text in texts:
            counts = Counter(t for t in analyze(text, self.config) if t in self._index)
            cols = np.fromiter((self._index[t] for t in counts), dtype=np.int64, count=len(counts))
            tf = np.fromiter(
                (1.0 + math.log(c) for c in counts.values()),
                dtype=np.float64,
                count=len(counts),
            )
            values = tf * self.idf[cols]
            norm = float(np.sqrt(np.dot(values, values)))
            rows.append((cols, (values / norm if norm > 0 else values).astype(np.float32)))
        return rows

    def transform(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """``(n, size)`` dense tf-idf matrix (tests and small batches; the head uses :meth:`sparse_rows`)."""
        out = np.zeros((len(texts), self.size), dtype=np.float32)
        for i, (cols, values) in enumerate(self.sparse_rows(texts)):
            out[i, cols] = values
        return out

    def dot(self, texts: Sequence[str], weights_t: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``transform(texts) @ weights_t`` for ``weights_t`` of shape ``(size, k)``, reading only the texts' rows."""
        out = np.zeros((len(texts), weights_t.shape[1]), dtype=np.float32)
        for i, (cols, values) in enumerate(self.sparse_rows(texts)):
            if cols.size:
                out[i] = values @ weights_t[cols]
        return out
