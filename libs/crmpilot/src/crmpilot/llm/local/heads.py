"""Ticket category heads: embeddings in, a probability per category out.

:class:`TicketClassifierHead` is the seam for a classifier trained on a
company's closed cases (``crmpilot train``); its ``id`` goes into provenance.
The default, :class:`ZeroShotHead`, needs no training: it compares the ticket
with each category's description, as a whole and phrase by phrase (the
descriptions are comma-separated phrases), and turns the similarities into
probabilities with a temperature softmax. Each label text is embedded with both
e5 prefixes and the two vectors averaged: on Banking77 (label names as
descriptions) that beat ``query:`` alone, which beat ``passage:`` alone; on the
default taxonomy ``passage:`` was best and the average close to it.

**Out of scope.** A head also says how close a ticket is to anything it knows
(:func:`scope_of`): a trained head with a gate (``crmpilot.head/3``) by the
ticket's largest cosine similarity to the closed cases it was trained on,
against a bound fitted on its dev split; the zero-shot head by the ticket's
best similarity to a category description (the score it classifies by),
against :data:`DEFAULT_MIN_SIMILARITY`. A ticket below the bound is out of
scope: the local methods give its answer confidence 0 (never applied, not
even suggested) and say why (:data:`OUT_OF_SCOPE_NOTE`). A head without a
gate (an artefact trained before it, any other head) returns ``None``: no gate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from crmpilot.llm.base import Label as Category
from crmpilot.llm.local.anchors import AnchorSet, softmax
from crmpilot.llm.local.embedder import EmbeddingBatcher, Vectors

__all__ = [
    "DEFAULT_MIN_SIMILARITY",
    "DEFAULT_TEMPERATURE",
    "OUT_OF_SCOPE_NOTE",
    "Scope",
    "TicketClassifierHead",
    "ZeroShotHead",
    "head_proba",
    "scope_of",
]

DEFAULT_TEMPERATURE = 0.01
"""Cosine similarities of e5 sit in a narrow band (about 0.75-0.9); 0.01 spreads them."""

DEFAULT_MIN_SIMILARITY = 0.80
"""The zero-shot head's out-of-scope bound: a ticket whose best similarity to every category
description (whole and phrase, averaged, as it classifies) is below it is out of scope. Stated,
not fitted (zero-shot has no examples): on Banking77, 99 % of queries score ≥ 0.83 against the
intents' names and ≥ 0.80 against the built-in taxonomy, unrelated short requests (weather,
recipes, sport) 0.80 in the median (docs/evaluation.md)."""

OUT_OF_SCOPE_NOTE = "Out of scope"
"""How a local method's rationale begins when the gate fired (``crmpilot eval`` counts these)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """How close tickets are to what a head knows, against the bound of its gate."""

    scores: npt.NDArray[np.float32]
    """``(n,)``: one score per ticket (a cosine similarity); higher is closer."""
    bound: float
    """A ticket scoring below it is out of scope."""
    measure: str
    """What the score is, for the rationale (``nearest training example``…)."""

    @property
    def outside(self) -> npt.NDArray[np.bool_]:
        """``(n,)``: the tickets that are out of scope."""
        return np.asarray(self.scores < self.bound)

    def note(self, i: int = 0) -> str:
        """Why ticket ``i`` is out of scope, in words."""
        return f"{OUT_OF_SCOPE_NOTE}: {self.measure} {float(self.scores[i]):.3f} < bound {self.bound:.3f}"


class TicketClassifierHead(Protocol):
    """Maps ticket embeddings (``query:`` side, one row per ticket) to category probabilities."""

    @property
    def id(self) -> str:
        """Identifies the head (and a trained artefact's version) in provenance."""
        ...

    @property
    def labels(self) -> tuple[str, ...]:
        """The category names, in the order of the probability columns."""
        ...

    def predict_proba(self, vectors: Vectors) -> npt.NDArray[np.float32]: ...


def head_proba(head: TicketClassifierHead, vectors: Vectors, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """``head``'s probabilities for tickets ``texts`` embedded as ``vectors``.

    A head with a true ``reads_text`` (a hybrid trained head) also gets the
    texts; any other head only the embeddings.
    """
    if getattr(head, "reads_text", False):
        probs: npt.NDArray[np.float32] = head.predict_proba(vectors, texts=texts)  # type: ignore[call-arg]  # a head with reads_text takes the texts too; the protocol has only the vectors
        return probs
    return head.predict_proba(vectors)


def scope_of(head: TicketClassifierHead, vectors: Vectors) -> Scope | None:
    """``head``'s out-of-scope reading of tickets embedded as ``vectors``; ``None``: the head has no gate."""
    scope = getattr(head, "scope", None)
    if not callable(scope):
        return None
    result: Scope | None = scope(vectors)
    return result


@dataclass(frozen=True, slots=True)
class ZeroShotHead:
    """Classifies by similarity to the category descriptions; built with :meth:`build`."""

    labels: tuple[str, ...]
    descriptions: Vectors
    phrases: AnchorSet
    phrase_vectors: Vectors
    temperature: float = DEFAULT_TEMPERATURE
    min_similarity: float | None = DEFAULT_MIN_SIMILARITY
    """The out-of-scope bound (``None``: no gate)."""
    id: str = "zero-shot"

    @classmethod
    async def build(
        cls,
        categories: tuple[Category, ...],
        batcher: EmbeddingBatcher,
        *,
        temperature: float = DEFAULT_TEMPERATURE,
        min_similarity: float | None = DEFAULT_MIN_SIMILARITY,
    ) -> ZeroShotHead:
        phrases = AnchorSet.of({c.name: _phrases(c) for c in categories})
        descriptions, phrase_vectors = await asyncio.gather(
            _both_prefixes(tuple(c.description for c in categories), batcher), _both_prefixes(phrases.texts, batcher)
        )
        names = tuple(c.name for c in categories)
        return cls(names, descriptions, phrases, phrase_vectors, temperature, min_similarity)

    def similarities(self, vectors: Vectors) -> npt.NDArray[np.float32]:
        """``(n, n_labels)``: the mean of whole-description and best-phrase similarity."""
        whole = np.atleast_2d(vectors) @ self.descriptions.T
        return ((whole + self.phrases.scores(vectors, self.phrase_vectors)) / 2).astype(np.float32)

    def predict_proba(self, vectors: Vectors) -> npt.NDArray[np.float32]:
        return softmax(self.similarities(vectors), self.temperature)

    def scope(self, vectors: Vectors) -> Scope | None:
        """Each ticket's best similarity to a category description, against :attr:`min_similarity`."""
        if self.min_similarity is None:
            return None
        return Scope(self.similarities(vectors).max(axis=1), float(self.min_similarity), "closest category description")


async def _both_prefixes(texts: tuple[str, ...], batcher: EmbeddingBatcher) -> Vectors:
    """The mean of the ``query:`` and ``passage:`` embeddings: its dot product is the mean similarity."""
    as_query, as_passage = await asyncio.gather(
        batcher.anchors(texts, is_query=True), batcher.anchors(texts, is_query=False)
    )
    return ((as_query + as_passage) / 2).astype(np.float32)


def _phrases(category: Category) -> list[str]:
    parts = [p.strip() for p in category.description.split(",") if p.strip()]
    return parts or [category.name]
