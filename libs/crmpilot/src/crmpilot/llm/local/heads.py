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

__all__ = ["DEFAULT_TEMPERATURE", "TicketClassifierHead", "ZeroShotHead", "head_proba"]

DEFAULT_TEMPERATURE = 0.01
"""Cosine similarities of e5 sit in a narrow band (about 0.75-0.9); 0.01 spreads them."""


class TicketClassifierHead(Protocol):
    """Maps ticket embeddings (``query:`` side, one row per ticket) to category probabilities."""

    id: str
    """Identifies the head (and a trained artefact's version) in provenance."""
    labels: tuple[str, ...]
    """The category names, in the order of the probability columns."""

    def predict_proba(self, vectors: Vectors) -> npt.NDArray[np.float32]: ...


def head_proba(head: TicketClassifierHead, vectors: Vectors, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """``head``'s probabilities for tickets ``texts`` embedded as ``vectors``.

    A head with a true ``reads_text`` (a hybrid trained head) also gets the
    texts; any other head only the embeddings.
    """
    if getattr(head, "reads_text", False):
        probs: npt.NDArray[np.float32] = head.predict_proba(vectors, texts=texts)  # type: ignore[call-arg]
        return probs
    return head.predict_proba(vectors)


@dataclass(frozen=True, slots=True)
class ZeroShotHead:
    """Classifies by similarity to the category descriptions; built with :meth:`build`."""

    labels: tuple[str, ...]
    descriptions: Vectors
    phrases: AnchorSet
    phrase_vectors: Vectors
    temperature: float = DEFAULT_TEMPERATURE
    id: str = "zero-shot"

    @classmethod
    async def build(
        cls, categories: tuple[Category, ...], batcher: EmbeddingBatcher, *, temperature: float = DEFAULT_TEMPERATURE
    ) -> ZeroShotHead:
        phrases = AnchorSet.of({c.name: _phrases(c) for c in categories})
        descriptions, phrase_vectors = await asyncio.gather(
            _both_prefixes(tuple(c.description for c in categories), batcher), _both_prefixes(phrases.texts, batcher)
        )
        return cls(tuple(c.name for c in categories), descriptions, phrases, phrase_vectors, temperature)

    def similarities(self, vectors: Vectors) -> npt.NDArray[np.float32]:
        """``(n, n_labels)``: the mean of whole-description and best-phrase similarity."""
        whole = np.atleast_2d(vectors) @ self.descriptions.T
        return ((whole + self.phrases.scores(vectors, self.phrase_vectors)) / 2).astype(np.float32)

    def predict_proba(self, vectors: Vectors) -> npt.NDArray[np.float32]:
        return softmax(self.similarities(vectors), self.temperature)


async def _both_prefixes(texts: tuple[str, ...], batcher: EmbeddingBatcher) -> Vectors:
    """The mean of the ``query:`` and ``passage:`` embeddings: its dot product is the mean similarity."""
    as_query, as_passage = await asyncio.gather(
        batcher.anchors(texts, is_query=True), batcher.anchors(texts, is_query=False)
    )
    return ((as_query + as_passage) / 2).astype(np.float32)


def _phrases(category: Category) -> list[str]:
    parts = [p.strip() for p in category.description.split(",") if p.strip()]
    return parts or [category.name]
