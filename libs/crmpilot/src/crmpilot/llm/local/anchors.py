"""Labelled anchor texts and how a text scores against them.

An :class:`AnchorSet` maps labels (sentiments, intents, categories) to a few
example phrasings each; a text's score for a label is its best cosine
similarity to that label's anchors, and :func:`softmax` turns scores into
probabilities with a temperature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crmpilot.llm.local.embedder import Vectors

__all__ = ["AnchorSet", "softmax"]


@dataclass(frozen=True, slots=True)
class AnchorSet:
    labels: tuple[str, ...]
    texts: tuple[str, ...]
    owner: tuple[int, ...]
    """``owner[i]`` is the index in ``labels`` of ``texts[i]``."""

    @classmethod
    def of(cls, groups: Mapping[str, Sequence[str]]) -> AnchorSet:
        labels = tuple(groups)
        pairs = [(text, i) for i, label in enumerate(labels) for text in groups[label]]
        return cls(labels, tuple(t for t, _ in pairs), tuple(i for _, i in pairs))

    def scores(self, vectors: Vectors, anchor_vectors: Vectors) -> npt.NDArray[np.float32]:
        """``(n_texts, n_labels)``: each text's best similarity to each label's anchors."""
        sims = np.atleast_2d(vectors) @ anchor_vectors.T
        out = np.full((sims.shape[0], len(self.labels)), -1.0, dtype=np.float32)
        for j, label_index in enumerate(self.owner):
            np.maximum(out[:, label_index], sims[:, j], out=out[:, label_index])
        return out


def softmax(scores: npt.NDArray[np.float32], temperature: float) -> npt.NDArray[np.float32]:
    """Row-wise softmax of ``scores / temperature``."""
    z = np.atleast_2d(scores) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    probs: npt.NDArray[np.float32] = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return probs
